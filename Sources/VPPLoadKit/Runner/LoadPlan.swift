/// How much load a run sends: `concurrency` tasks, each with one call in flight at a time, spread round-robin over
/// `connections` connections, until the bound is reached.
public struct LoadPlan: Sendable, Equatable {
    public enum Bound: Sendable, Equatable {
        /// Calls start until this much time has passed; calls in flight then still finish.
        case duration(Duration)
        /// This many calls in all.
        case calls(Int)
    }

    public var connections: Int
    public var concurrency: Int
    public var bound: Bound
    public var callTimeout: Duration

    public init(connections: Int, concurrency: Int, bound: Bound, callTimeout: Duration) {
        self.connections = connections
        self.concurrency = concurrency
        self.bound = bound
        self.callTimeout = callTimeout
    }

    /// The most calls one connection has in flight at once.
    public var callsInFlightPerConnection: Int {
        (self.concurrency + self.connections - 1) / self.connections
    }
}
