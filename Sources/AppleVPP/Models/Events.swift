/// The answer to every asynchronous write: the event to follow with `/status` or notifications.
public struct EventResponse: Codable, Hashable, Sendable, AppleVPPTokenResponse {
    public var eventId: String
    public var mdmInfo: MDMInfo?
    public var tokenExpirationDate: String?
    public var uId: String?

    public init(eventId: String, mdmInfo: MDMInfo? = nil, tokenExpirationDate: String? = nil, uId: String? = nil) {
        self.eventId = eventId
        self.mdmInfo = mdmInfo
        self.tokenExpirationDate = tokenExpirationDate
        self.uId = uId
    }
}

/// `GET /status?eventId=` answer.
public struct StatusResponse: Codable, Hashable, Sendable, AppleVPPTokenResponse {
    public var eventStatus: EventStatus
    public var eventType: EventType?
    public var numCompleted: Int?
    public var numRequested: Int?
    /// Per-item failures; a FAILED event may still have completed some items.
    public var failures: [ErrorResponse]?
    public var mdmInfo: MDMInfo?
    public var tokenExpirationDate: String?
    public var uId: String?

    public init(
        eventStatus: EventStatus,
        eventType: EventType? = nil,
        numCompleted: Int? = nil,
        numRequested: Int? = nil,
        failures: [ErrorResponse]? = nil,
        mdmInfo: MDMInfo? = nil,
        tokenExpirationDate: String? = nil,
        uId: String? = nil
    ) {
        self.eventStatus = eventStatus
        self.eventType = eventType
        self.numCompleted = numCompleted
        self.numRequested = numRequested
        self.failures = failures
        self.mdmInfo = mdmInfo
        self.tokenExpirationDate = tokenExpirationDate
        self.uId = uId
    }

    public var isFinished: Bool { eventStatus != .pending }
}
