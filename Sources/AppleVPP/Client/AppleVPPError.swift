/// A failed call to Apple's App and Book Management API.
///
/// `kind` says where it failed; `errorNumber` is Apple's number when Apple answered with an `ErrorResponse` (whatever
/// the HTTP status, 200 included). `isRetryable` and `isTokenDead` say what the caller should do next.
public struct AppleVPPError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// Apple answered with an error body.
        case api
        /// Apple answered with a non-2xx status and no error body we could read.
        case http
        /// The request did not get an answer (connection refused, reset, timed out).
        case transport
        /// The answer was not the JSON this endpoint returns.
        case invalidResponse
        /// The request was refused before it was sent (e.g. no URL in service config).
        case invalidRequest
        /// An asynchronous event did not finish in time.
        case timeout
    }

    public var kind: Kind
    /// Apple's error number (`9621`, `9646`, ...), when Apple gave one.
    public var errorNumber: Int?
    /// The HTTP status of the answer, when there was one.
    public var httpStatus: Int?
    /// What went wrong, for people. Never contains the token.
    public var message: String
    /// Which items the error concerns, when Apple said.
    public var errorInfo: ErrorInfo?
    /// The wait Apple asked for with `Retry-After`, in seconds.
    public var retryAfterSeconds: Double?

    public init(
        kind: Kind,
        errorNumber: Int? = nil,
        httpStatus: Int? = nil,
        message: String,
        errorInfo: ErrorInfo? = nil,
        retryAfterSeconds: Double? = nil
    ) {
        self.kind = kind
        self.errorNumber = errorNumber
        self.httpStatus = httpStatus
        self.message = message
        self.errorInfo = errorInfo
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// Apple's error numbers that the product acts on. "The server may add additional error codes in the future."
    public enum Number {
        public static let loginRequired = 9601
        public static let invalidArgument = 9602
        public static let internalError = 9603
        public static let registeredUserNotFound = 9609
        public static let licenseNotFound = 9610
        public static let licenseAlreadyAssigned = 9616
        public static let tokenExpired = 9621
        public static let invalidToken = 9622
        public static let tokenRevoked = 9625
        public static let serviceRemoved = 9634
        public static let maintenanceMode = 9644
        public static let tooManyRequests = 9646
        public static let pageIndexOutOfRange = 9650
        public static let tooManyAssets = 9700
        public static let tooManyClientUserIds = 9701
        public static let tooManySerialNumbers = 9702
        public static let duplicateAssets = 9703
        public static let duplicateClientUserIds = 9704
        public static let duplicateSerialNumbers = 9705
        public static let assetNotRevocable = 9706
        public static let assetNotDeviceAssignable = 9707
        public static let eventNotFound = 9708
        public static let notEnoughLicenses = 9709
        public static let notificationURLAndTokenRequired = 9710
        public static let notificationTooLong = 9711
        public static let notificationURLNotHTTPS = 9712
        public static let mdmMetadataTooLong = 9713
        public static let tooManyUsers = 9714
        public static let duplicateUsers = 9715
        public static let userAlreadyExists = 9716
        public static let invalidEmail = 9717
        public static let noAssets = 9718
        public static let noUsersOrSerialNumbers = 9719
        public static let noUsers = 9720
        public static let invalidVersionId = 9721
        public static let badAuthorizationHeader = 9722
        public static let mdmInfoIncomplete = 9723
        public static let mdmIdTooLong = 9724
        public static let mdmNameTooLong = 9725
        public static let unsupportedMethod = 9726
        public static let unsupportedContentType = 9727
        public static let notificationURLUnreachable = 9728
    }

    /// The token can no longer be used: expired (9621), invalid (9622) or revoked (9625). Stop using it and ask an
    /// administrator for a new `.vpptoken` file; retrying will not help.
    public var isTokenDead: Bool {
        guard let errorNumber else { return false }
        return [Number.tokenExpired, Number.invalidToken, Number.tokenRevoked].contains(errorNumber)
    }

    /// Apple throttles this organisation (9646 or HTTP 429).
    public var isThrottled: Bool { errorNumber == Number.tooManyRequests || httpStatus == 429 }

    /// Worth sending again after a wait: throttling, server errors (5xx, 9603, maintenance) and lost connections.
    /// Never a token error or another 4xx: those fail the same way every time.
    public var isRetryable: Bool {
        if isTokenDead { return false }
        if isThrottled { return true }
        if let errorNumber, [Number.internalError, Number.maintenanceMode].contains(errorNumber) { return true }
        switch kind {
        case .transport: return true
        case .invalidRequest, .invalidResponse, .timeout: return false
        case .api, .http:
            guard let httpStatus else { return false }
            return (500...599).contains(httpStatus)
        }
    }

    public var description: String {
        var parts: [String] = []
        if let errorNumber { parts.append("Apple error \(errorNumber)") }
        if let httpStatus { parts.append("HTTP \(httpStatus)") }
        let prefix = parts.isEmpty ? "\(kind)" : parts.joined(separator: ", ")
        return "\(prefix): \(message)"
    }
}
