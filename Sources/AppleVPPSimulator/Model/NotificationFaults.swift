public import AppleVPP
public import Foundation

/// A fault the simulator injects into the next notifications it sends to an MDM's `notificationUrl` (the
/// counterpart of `SimulatorFault`, which hits API requests). Faults are taken in the order they were injected; each
/// hits the next `count` notifications of `type` (of any type when nil), `TEST_NOTIFICATION` included except for
/// `reorder`.
public struct NotificationFault: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable {
        /// The notification is not sent at all (no attempt); the log shows it `dropped`.
        case drop
        /// One delivery attempt counts as failed without sending anything, so the notification is retried after the
        /// next of `notificationRetryDelays` (each failed attempt takes one of `count`).
        case fail
        /// The notification is sent after `delayMilliseconds` (default 1000).
        case delay
        /// The notification is sent twice, with the same `notificationId` (the MDM must de-duplicate, as Apple's may
        /// arrive more than once).
        case duplicate
        /// The next `count` notifications are held and, once the last of them arrives, sent one after the other in
        /// reverse order. Not applied to `TEST_NOTIFICATION`, which `POST /client/config` waits for.
        case reorder
    }

    public var kind: Kind
    /// How many notifications (for `fail`: attempts) it hits.
    public var count: Int
    /// Only notifications of this `notificationType`; any when nil.
    public var type: NotificationType?
    /// For `delay`.
    public var delayMilliseconds: Int?

    public init(kind: Kind, count: Int = 1, type: NotificationType? = nil, delayMilliseconds: Int? = nil) {
        self.kind = kind
        self.count = max(1, count)
        self.type = type
        self.delayMilliseconds = delayMilliseconds
    }

    /// `count` may be left out of the control API's JSON (it is 1 then).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            kind: try container.decode(Kind.self, forKey: .kind),
            count: try container.decodeIfPresent(Int.self, forKey: .count) ?? 1,
            type: try container.decodeIfPresent(NotificationType.self, forKey: .type),
            delayMilliseconds: try container.decodeIfPresent(Int.self, forKey: .delayMilliseconds)
        )
    }

    func matches(_ notificationType: NotificationType) -> Bool {
        type.map { $0 == notificationType } ?? true
    }
}

/// One notification the simulator produced, as its delivery log shows it (`core.notificationLog()`,
/// `GET /_control/notifications`).
public struct SimulatedNotification: Codable, Sendable, Hashable {
    public enum Status: String, Codable, Sendable {
        /// Not delivered yet: waiting for an attempt, a retry or (under a `reorder` fault) the rest of its group.
        case pending
        /// An attempt was answered 2xx.
        case delivered
        /// Every attempt failed (non-2xx, unreachable, timed out): Apple's delivery is best effort, so it is gone.
        case failed
        /// Never sent: a `drop` fault, the simulator's queue was full, or the simulator shut down first.
        case dropped
    }

    public var notificationId: String
    public var notificationType: NotificationType
    public var uId: String
    /// The `notificationUrl` it went (or was to go) to: the location's when it was produced.
    public var url: String
    /// Delivery attempts made so far (a `duplicate` fault's second delivery counts on).
    public var attempts: Int
    public var status: Status
    /// The HTTP status of the last attempt; nil when it got no answer (or none was made).
    public var lastHTTPStatus: Int?
    /// Why the last attempt failed when it got no answer (connection refused, timeout, a `fail` fault...).
    public var lastError: String?
    /// The notification fault that hit it, if any.
    public var fault: NotificationFault.Kind?
    /// The JSON body sent, exactly: `{"notification":{...},"notificationId":...,"notificationType":...,"uId":...}`.
    public var body: String
    /// When it was produced: seconds since the simulator started, on a monotonic clock.
    public var producedAtSeconds: Double

    /// The body's payload, typed (e.g. `AssetManagementNotification.self`).
    public func envelope<Payload: Codable & Hashable & Sendable>(_ payload: Payload.Type) throws
        -> NotificationEnvelope<Payload>
    {
        try NotificationEnvelope<Payload>.decode(Data(body.utf8))
    }
}
