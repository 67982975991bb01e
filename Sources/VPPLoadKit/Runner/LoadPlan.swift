/// How much load a run sends: `concurrency` tasks, each with one call in flight at a time, until the bound is reached.
/// Each task keeps to one connection (round-robin), or, with `spreadCalls`, call number i goes to connection
/// i mod `connections`, so that a few calls in flight still reach every connection (and so every tenant, when each
/// connection is a tenant's).
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
    public var spreadCalls: Bool

    public init(connections: Int, concurrency: Int, bound: Bound, callTimeout: Duration, spreadCalls: Bool = false) {
        self.connections = connections
        self.concurrency = concurrency
        self.bound = bound
        self.callTimeout = callTimeout
        self.spreadCalls = spreadCalls
    }

    /// The most calls one connection has in flight at once (with `spreadCalls`, the most it can have).
    public var callsInFlightPerConnection: Int {
        self.spreadCalls ? min(self.concurrency, 128) : (self.concurrency + self.connections - 1) / self.connections
    }
}
