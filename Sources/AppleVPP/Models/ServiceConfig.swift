/// `GET /service/config`: URLs, limits and error codes. Apple says to re-read it every five minutes rather than
/// hard-coding any of it.
public struct ServiceConfigResponse: Codable, Hashable, Sendable {
    public struct ErrorCode: Codable, Hashable, Sendable {
        public var errorNumber: Int
        public var errorMessage: String?
        public init(errorNumber: Int, errorMessage: String?) {
            self.errorNumber = errorNumber
            self.errorMessage = errorMessage
        }
    }

    public var errorCodes: [ErrorCode]?
    public var limits: [String: Int]
    public var notificationTypes: [String]?
    public var urls: [String: String]

    public init(
        errorCodes: [ErrorCode]? = nil,
        limits: [String: Int],
        notificationTypes: [String]? = nil,
        urls: [String: String]
    ) {
        self.errorCodes = errorCodes
        self.limits = limits
        self.notificationTypes = notificationTypes
        self.urls = urls
    }

    /// The limits as typed values, with Apple's documented values where a key is missing.
    public var serviceLimits: ServiceLimits { ServiceLimits(limits) }
}

/// The per-request limits from `ServiceConfigResponse.limits`.
public struct ServiceLimits: Hashable, Sendable {
    public var maxAssets: Int
    public var maxClientUserIds: Int
    public var maxSerialNumbers: Int
    public var maxRevokeClientUserIds: Int
    public var maxRevokeSerialNumbers: Int
    public var maxUsers: Int
    public var maxNotificationLength: Int
    public var maxMdmIdLength: Int
    public var maxMdmNameLength: Int
    public var maxMdmMetadataLength: Int

    /// The values in Apple's documented example, used only for keys a service config leaves out.
    public static let documentedDefaults: [String: Int] = [
        "maxAssets": 25, "maxClientUserIds": 1000, "maxSerialNumbers": 1000, "maxRevokeClientUserIds": 100,
        "maxRevokeSerialNumbers": 100, "maxUsers": 100, "maxNotificationLength": 512, "maxMdmIdLength": 100,
        "maxMdmNameLength": 100, "maxMdmMetadataLength": 255, "maxSubscriptions": 25,
        "maxSubscriptionClientUserIds": 1000,
    ]

    public init(_ limits: [String: Int]) {
        // A zero or negative limit would make batching loop forever: treat it as absent.
        func value(_ key: String) -> Int {
            if let value = limits[key], value > 0 { return value }
            return Self.documentedDefaults[key] ?? 1
        }
        maxAssets = value("maxAssets")
        maxClientUserIds = value("maxClientUserIds")
        maxSerialNumbers = value("maxSerialNumbers")
        maxRevokeClientUserIds = value("maxRevokeClientUserIds")
        maxRevokeSerialNumbers = value("maxRevokeSerialNumbers")
        maxUsers = value("maxUsers")
        maxNotificationLength = value("maxNotificationLength")
        maxMdmIdLength = value("maxMdmIdLength")
        maxMdmNameLength = value("maxMdmNameLength")
        maxMdmMetadataLength = value("maxMdmMetadataLength")
    }
}

/// The keys of `ServiceConfigResponse.urls`.
public enum ServiceURLKey {
    public static let clientConfig = "clientConfig"
    public static let getAssets = "getAssets"
    public static let getAssignments = "getAssignments"
    public static let associateAssets = "associateAssets"
    public static let disassociateAssets = "disassociateAssets"
    public static let revokeAssets = "revokeAssets"
    public static let getUsers = "getUsers"
    public static let createUsers = "createUsers"
    public static let updateUsers = "updateUsers"
    public static let retireUsers = "retireUsers"
    public static let eventStatus = "eventStatus"
    public static let contentMetadataLookup = "contentMetadataLookup"
    public static let invitationEmail = "invitationEmail"
}
