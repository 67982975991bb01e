/// `POST /client/config` body. Only the fields that are set are sent.
public struct ClientConfigRequest: Codable, Hashable, Sendable {
    public var mdmInfo: MDMInfo?
    public var notificationUrl: String?
    public var notificationAuthToken: String?
    public var notificationTypes: [String]?

    public init(
        mdmInfo: MDMInfo? = nil,
        notificationUrl: String? = nil,
        notificationAuthToken: String? = nil,
        notificationTypes: [String]? = nil
    ) {
        self.mdmInfo = mdmInfo
        self.notificationUrl = notificationUrl
        self.notificationAuthToken = notificationAuthToken
        self.notificationTypes = notificationTypes
    }
}

/// `GET`/`POST /client/config` answer.
public struct ClientConfigResponse: Codable, Hashable, Sendable, AppleVPPTokenResponse {
    public var countryISO2ACode: String?
    public var defaultPlatform: String?
    public var locationName: String?
    public var mdmInfo: MDMInfo?
    public var notificationAuthToken: String?
    public var notificationUrl: String?
    public var subscribedNotificationTypes: [String]?
    public var websiteURL: String?
    public var tokenExpirationDate: String?
    public var uId: String?

    public init(
        countryISO2ACode: String? = nil,
        defaultPlatform: String? = nil,
        locationName: String? = nil,
        mdmInfo: MDMInfo? = nil,
        notificationAuthToken: String? = nil,
        notificationUrl: String? = nil,
        subscribedNotificationTypes: [String]? = nil,
        websiteURL: String? = nil,
        tokenExpirationDate: String? = nil,
        uId: String? = nil
    ) {
        self.countryISO2ACode = countryISO2ACode
        self.defaultPlatform = defaultPlatform
        self.locationName = locationName
        self.mdmInfo = mdmInfo
        self.notificationAuthToken = notificationAuthToken
        self.notificationUrl = notificationUrl
        self.subscribedNotificationTypes = subscribedNotificationTypes
        self.websiteURL = websiteURL
        self.tokenExpirationDate = tokenExpirationDate
        self.uId = uId
    }
}
