public import AppleVPP

/// An error the simulator answers with: Apple's error number, message and HTTP status.
public struct SimulatorAPIError: Error, Sendable {
    public var httpStatus: Int
    public var body: ErrorResponse
    public var retryAfterSeconds: Int?

    init(_ number: Int, _ status: Int, _ message: String, info: ErrorInfo? = nil, retryAfter: Int? = nil) {
        self.httpStatus = status
        self.body = ErrorResponse(errorNumber: number, errorMessage: message, errorInfo: info)
        self.retryAfterSeconds = retryAfter
    }

    typealias N = AppleVPPError.Number
    static let badAuthorization = Self(
        N.badAuthorizationHeader,
        401,
        "Authorization header must match the format 'Bearer {sToken}'."
    )
    static let tokenExpired = Self(N.tokenExpired, 401, "The sToken has expired. Generate a new one.")
    static let tokenRevoked = Self(N.tokenRevoked, 401, "The server has revoked the sToken.")
    /// Apple answers an unknown token with HTTP 200 and an error body (observed by Fleet); so does the simulator.
    static let invalidToken = Self(N.invalidToken, 200, "Invalid authentication token")
    static func invalidArgument(_ message: String, info: ErrorInfo? = nil) -> Self {
        Self(N.invalidArgument, 400, message, info: info)
    }
    static let pageOutOfRange = Self(N.pageIndexOutOfRange, 400, "Page index out of range.")
    static let invalidVersionId = Self(N.invalidVersionId, 400, "Invalid versionId.")
    static let eventNotFound = Self(N.eventNotFound, 400, "Event not found.")
    static let unsupportedContentType = Self(N.unsupportedContentType, 415, "Unsupported Content-Type.")
}

/// Apple's messages for the error numbers the simulator lists in service config.
enum AppleErrorCatalogue {
    static let messages: [Int: String] = [
        9601: "Login required", 9602: "Invalid argument", 9603: "Internal error", 9609: "Registered user not found",
        9610: "License not found", 9621: "sToken has expired", 9622: "Invalid authentication token",
        9625: "The server has revoked the sToken", 9634: "Service no longer available",
        9646: "There have been too many requests recently. Try again later.", 9650: "Page index out of range",
        9700: "Too many assets", 9701: "Too many clientUserIds", 9702: "Too many serialNumbers",
        9703: "Duplicate assets", 9704: "Duplicate clientUserIds", 9705: "Duplicate serialNumbers",
        9706: "Asset is not revocable", 9707: "Asset is not device assignable", 9708: "Event not found",
        9709: "There aren't enough assets available to complete this association.",
        9710: "notificationUrl and notificationAuthToken are both required",
        9711: "Notification URL or token is too long", 9712: "Notification URL must be a valid HTTPS URL",
        9713: "mdmInfo metadata is too long", 9714: "Too many users", 9715: "Duplicate users",
        9716: "A registered user with this clientUserId already exists", 9717: "Invalid email", 9718: "No assets",
        9719: "No clientUserIds or serialNumbers", 9720: "No users", 9721: "Invalid versionId",
        9722: "Authorization header must match the format 'Bearer {sToken}'", 9723: "mdmInfo is incomplete",
        9724: "mdmInfo id is too long", 9725: "mdmInfo name is too long", 9726: "Unsupported HTTP method",
        9727: "Unsupported Content-Type", 9728: "Notification URL is unreachable",
    ]
}
