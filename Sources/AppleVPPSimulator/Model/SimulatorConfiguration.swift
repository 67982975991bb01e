public import AppleVPP

/// How a simulator behaves.
public struct SimulatorConfiguration: Sendable {
    /// When an asynchronous event (associate, users/create, ...) is processed.
    public enum EventCompletion: Sendable, Hashable {
        /// The first `/status` poll answers PENDING; the event is processed right after it, so the next poll sees
        /// COMPLETE or FAILED. (Events are processed in submission order.)
        case afterFirstPoll
        /// Processed once this long has passed since it was submitted (checked on every request).
        case afterDelay(Duration)
        /// Processed before the submitting request is answered.
        case immediately
    }

    public var host: String
    /// 0 for any free port.
    public var port: Int
    /// Items per page of `/assets`, `/assignments` and `/users` (Apple: "on the order of several hundred").
    public var pageSize: Int
    /// The `limits` of service config; Apple's documented values by default. The simulator enforces them.
    public var limits: [String: Int]
    public var eventCompletion: EventCompletion

    public init(
        host: String = "127.0.0.1",
        port: Int = 0,
        pageSize: Int = 1000,
        limits: [String: Int] = ServiceLimits.documentedDefaults,
        eventCompletion: EventCompletion = .afterFirstPoll
    ) {
        self.host = host
        self.port = port
        self.pageSize = max(1, pageSize)
        self.limits = limits
        self.eventCompletion = eventCompletion
    }
}
