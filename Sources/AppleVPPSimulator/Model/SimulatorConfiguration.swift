public import AppleVPP

/// How a simulator behaves.
public struct SimulatorConfiguration: Sendable {
    /// When an asynchronous event (associate, users/create, ...) is processed.
    public enum EventCompletion: Sendable, Hashable {
        /// The first `/status` poll answers PENDING; the event is processed right after it, so the next poll sees
        /// COMPLETE or FAILED. (Events are processed in submission order.)
        case afterFirstPoll
        /// Processed once this long has passed since it was submitted: a background task completes it (and sends its
        /// notifications) with nobody polling; any request to the location also brings due events up to date.
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
    /// The waits before the second, third, ... attempt to deliver a notification. Apple delivers "best effort", with
    /// up to 3 attempts within 1–5 minutes (reference §3): by default 60 s, then 240 s. Tests pass short ones.
    public var notificationRetryDelays: [Duration]
    /// How long one delivery attempt (and the `TEST_NOTIFICATION` of `POST /client/config`) may take before it counts
    /// as failed.
    public var notificationTimeout: Duration

    public init(
        host: String = "127.0.0.1",
        port: Int = 0,
        pageSize: Int = 1000,
        limits: [String: Int] = ServiceLimits.documentedDefaults,
        eventCompletion: EventCompletion = .afterFirstPoll,
        notificationRetryDelays: [Duration] = Self.defaultNotificationRetryDelays,
        notificationTimeout: Duration = .seconds(10)
    ) {
        self.host = host
        self.port = port
        self.pageSize = max(1, pageSize)
        self.limits = limits
        self.eventCompletion = eventCompletion
        self.notificationRetryDelays = notificationRetryDelays
        self.notificationTimeout = notificationTimeout
    }

    /// 3 attempts within 1–5 minutes, as Apple's (reference §3).
    public static let defaultNotificationRetryDelays: [Duration] = [.seconds(60), .seconds(240)]
}
