public import VPPClient
import VPPProto
import VPPWire

/// `/vpp.v1.SystemService/Ping` with a fixed payload: the cost of the RPC path itself (framing, authentication
/// check, dispatch, encoding), with no storage behind it.
public struct PingWorkload: Workload {
    public let payload: [UInt8]

    public init(payloadBytes: Int) {
        // A recognisable pattern rather than zeros, so a server that mangled it would be seen in a capture.
        self.payload = (0..<payloadBytes).map { UInt8(truncatingIfNeeded: $0) }
    }

    public var name: String { "ping" }
    public var unit: String { "calls" }

    public func call(_ index: Int, on client: VPPClient, timeout: Duration) async throws {
        var request = VppV1.PingRequest()
        request.payload = self.payload
        let response = try await client.call(VppV1.SystemService.Ping.self, request, timeout: timeout)
        guard response.payload.count == self.payload.count else {
            throw RPCError.internalError(
                "The Ping answer carried \(response.payload.count) bytes, not \(self.payload.count)."
            )
        }
    }
}
