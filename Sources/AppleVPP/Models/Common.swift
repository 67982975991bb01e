/// `mdmInfo`: which device-management service claims the token. Set with `POST /client/config` and echoed on
/// every response; a different value means another MDM has taken the token over.
public struct MDMInfo: Codable, Hashable, Sendable {
    public var id: String
    public var name: String
    public var metadata: String

    public init(id: String, name: String, metadata: String) {
        self.id = id
        self.name = name
        self.metadata = metadata
    }
}

/// The fields Apple puts on every v2 response that needs a token.
public protocol AppleVPPTokenResponse: Sendable {
    /// The library's unique id; the same library reached through two tokens has the same `uId`.
    var uId: String? { get }
    /// When the token expires (ISO-8601).
    var tokenExpirationDate: String? { get }
    /// The MDM that claims the token, once one has.
    var mdmInfo: MDMInfo? { get }
}

/// An asset reference in requests and error details (Apple's `Asset`): `adamId` and, optionally, `pricingParam`.
public struct AssetReference: Codable, Hashable, Sendable {
    public var adamId: String
    public var pricingParam: PricingParam?

    public init(adamId: String, pricingParam: PricingParam? = nil) {
        self.adamId = adamId
        self.pricingParam = pricingParam
    }
}

/// `ErrorResponse`: Apple's error body, synchronous (any HTTP status, even 200) or inside `StatusResponse.failures`.
public struct ErrorResponse: Codable, Hashable, Sendable {
    public var errorNumber: Int
    public var errorMessage: String?
    public var errorInfo: ErrorInfo?

    public init(errorNumber: Int, errorMessage: String? = nil, errorInfo: ErrorInfo? = nil) {
        self.errorNumber = errorNumber
        self.errorMessage = errorMessage
        self.errorInfo = errorInfo
    }
}

/// `errorInfo` (Apple's `ResponseErrorInfo`): the items an error concerns.
public struct ErrorInfo: Codable, Hashable, Sendable {
    public var assets: [AssetReference]?
    public var clientUserIds: [String]?
    public var serialNumbers: [String]?

    public init(assets: [AssetReference]? = nil, clientUserIds: [String]? = nil, serialNumbers: [String]? = nil) {
        self.assets = assets
        self.clientUserIds = clientUserIds
        self.serialNumbers = serialNumbers
    }
}

/// The pagination fields of `/assets`, `/assignments` and `/users`.
public protocol AppleVPPPage: AppleVPPTokenResponse {
    associatedtype Item: Sendable
    var items: [Item] { get }
    var currentPageIndex: Int? { get }
    /// Present only when another page exists.
    var nextPageIndex: Int? { get }
    var totalPages: Int? { get }
    var versionId: String? { get }
}
