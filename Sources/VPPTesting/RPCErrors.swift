public import VPPWire

/// The RPC status a call failed with; nil when it succeeded or failed otherwise, so `#expect(rpcError { … }?.code ==
/// .notFound)` fails in both cases.
public func rpcError(_ body: () async throws -> Void) async -> RPCError? {
    do {
        try await body()
        return nil
    } catch let error as RPCError {
        return error
    } catch {
        return nil
    }
}
