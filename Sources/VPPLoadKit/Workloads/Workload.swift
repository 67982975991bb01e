public import VPPClient
public import VPPProto

/// A call mix: what one call of a load run does. The `LoadRunner` decides how many calls run, on which
/// connections, for how long, and measures them; a workload only makes one call at a time.
///
/// To add a mix: a type conforming to this protocol in this folder, and a subcommand that builds it (see
/// `PingCommand`).
public protocol Workload: Sendable {
    /// The name in reports, e.g. "ping".
    var name: String { get }
    /// What one successful call makes, for the human report ("calls", "tenants").
    var unit: String { get }

    /// Checks the connection's principal before any load is sent (e.g. that an operator method has an operator
    /// key). Throws a `LoadError` to refuse the run.
    func check(welcome: RpcV1.Welcome) throws

    /// Makes call number `index` (0-based, unique within the run) on `client`. Throws the call's error.
    func call(_ index: Int, on client: VPPClient, timeout: Duration) async throws

    /// The same, knowing which of the run's connections `client` is (0-based): workloads whose connections are
    /// different tenants use it to find the tenant's data. By default it calls `call(_:on:timeout:)`.
    func call(_ index: Int, connection: Int, on client: VPPClient, timeout: Duration) async throws
}

extension Workload {
    public func check(welcome: RpcV1.Welcome) throws {}

    public func call(_ index: Int, connection: Int, on client: VPPClient, timeout: Duration) async throws {
        try await self.call(index, on: client, timeout: timeout)
    }
}
