import Foundation
import VPPProto

extension RPCRouter {
    /// Registers the SystemService: Ping (echo; touches no storage) and WhoAmI.
    public mutating func registerSystemService() {
        self.register(VppV1.SystemService.Ping.self, requires: .any) { request, _ in
            var response = VppV1.PingResponse()
            response.payload = request.payload
            let now = Date().timeIntervalSince1970
            var time = VppV1.Timestamp()
            time.seconds = Int64(now.rounded(.down))
            time.nanos = Int32((now - now.rounded(.down)) * 1_000_000_000)
            response.serverTime = time
            return response
        }
        self.register(VppV1.SystemService.WhoAmI.self, requires: .any) { _, context in
            var response = VppV1.WhoAmIResponse()
            response.principalKind = context.principal.kind.rawValue
            response.tenantId = context.principal.tenantID ?? ""
            response.keyId = context.principal.keyID
            response.keyName = context.principal.keyName
            return response
        }
    }
}
