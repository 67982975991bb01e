import Foundation
import VPPProto

extension RPCRouter {
    /// Registers the SystemService: Ping (echo; touches no storage) and WhoAmI.
    public mutating func registerSystemService() {
        self.register(VppV1.SystemService.Ping.self, requires: .any) { request, _ in
            let now = Date().timeIntervalSince1970
            return VppV1.PingResponse(
                payload: request.payload,
                serverTime: VppV1.Timestamp(
                    seconds: Int64(now.rounded(.down)),
                    nanos: Int32((now - now.rounded(.down)) * 1_000_000_000)
                )
            )
        }
        self.register(VppV1.SystemService.WhoAmI.self, requires: .any) { _, context in
            VppV1.WhoAmIResponse(
                principalKind: context.principal.kind.rawValue,
                tenantId: context.principal.tenantID ?? "",
                keyId: context.principal.keyID,
                keyName: context.principal.keyName
            )
        }
    }
}
