import Foundation
import Testing
import VPPClient
import VPPProto
import VPPWire

/// Runs `body` and checks it fails with `code`; returns the error for further checks.
@discardableResult
func expectRPCError(
    _ code: RpcV1.StatusCode,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> RPCError? {
    do {
        try await body()
        Issue.record("expected \(code.name), but the call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as RPCError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected \(code.name), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

extension VppV1.GetTenantRequest {
    init(_ id: String) {
        self.init()
        self.tenantId = id
    }
}
