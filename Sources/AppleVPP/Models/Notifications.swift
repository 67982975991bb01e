public import Foundation

/// `notificationType`: what a notification Apple sends to the MDM's `notificationUrl` is about.
public struct NotificationType: AppleStringValue {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// Sent when notifications are configured (`POST /client/config`); the configuration is refused (9728) unless the
    /// URL answers 2xx. Its payload is `{}`.
    public static let test: Self = "TEST_NOTIFICATION"
    /// Licenses bought, transferred between locations or refunded (`AssetCountNotification`).
    public static let assetCount: Self = "ASSET_COUNT"
    /// An associate, disassociate or revoke event's result (`AssetManagementNotification`), also for events another
    /// party started.
    public static let assetManagement: Self = "ASSET_MANAGEMENT"
    /// A create, update or retire users event's result (`UserManagementNotification`).
    public static let userManagement: Self = "USER_MANAGEMENT"
    /// Users accepted their invitation (`UserAssociatedNotification`).
    public static let userAssociated: Self = "USER_ASSOCIATED"
    public static let subscriptionCount: Self = "SUBSCRIPTION_COUNT"
    public static let subscriptionManagement: Self = "SUBSCRIPTION_MANAGEMENT"
    public static let unlimitedAsset: Self = "UNLIMITED_ASSET"

    /// Every type Apple documents, `TEST_NOTIFICATION` first.
    public static let all: [Self] = [
        .test, .assetCount, .assetManagement, .userManagement, .userAssociated, .subscriptionCount,
        .subscriptionManagement, .unlimitedAsset,
    ]
}

/// `result` of an event's notification.
public struct NotificationResult: AppleStringValue {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let success: Self = "SUCCESS"
    public static let failure: Self = "FAILURE"
}

/// The fields every notification carries around its payload:
/// `{"notification": {...}, "notificationId": "...", "notificationType": "...", "uId": "..."}`. Decode this first,
/// then `NotificationEnvelope<Payload>` for the payload its type names.
public struct NotificationHeader: Codable, Hashable, Sendable {
    /// Unique per notification; Apple may deliver one more than once (up to 3 attempts): de-duplicate on it.
    public var notificationId: String
    public var notificationType: NotificationType
    /// The location (library) the notification is about.
    public var uId: String?

    public init(notificationId: String, notificationType: NotificationType, uId: String?) {
        self.notificationId = notificationId
        self.notificationType = notificationType
        self.uId = uId
    }
}

/// A whole notification with its typed payload.
public struct NotificationEnvelope<Payload: Codable & Hashable & Sendable>: Codable, Hashable, Sendable {
    public var notification: Payload
    public var notificationId: String
    public var notificationType: NotificationType
    public var uId: String?

    public init(notification: Payload, notificationId: String, notificationType: NotificationType, uId: String?) {
        self.notification = notification
        self.notificationId = notificationId
        self.notificationType = notificationType
        self.uId = uId
    }
}

/// The payload of `TEST_NOTIFICATION` (and of the types whose payload this service does not read): `{}`.
public struct EmptyNotification: Codable, Hashable, Sendable {
    public init() {}
}

/// `ASSET_COUNT`: an asset's licenses changed by `countDelta` (a purchase adds, a refund or a transfer away takes).
public struct AssetCountNotification: Codable, Hashable, Sendable {
    public var adamId: String
    public var pricingParam: PricingParam?
    public var countDelta: Int

    public init(adamId: String, pricingParam: PricingParam?, countDelta: Int) {
        self.adamId = adamId
        self.pricingParam = pricingParam
        self.countDelta = countDelta
    }
}

/// `ASSET_MANAGEMENT`: some of an event's assignments (at most 100 per notification) and how they ended. A FAILURE
/// carries one `error` that applies to every assignment listed.
public struct AssetManagementNotification: Codable, Hashable, Sendable {
    public var assignments: [Assignment]?
    public var eventId: String
    public var result: NotificationResult
    /// ASSOCIATE, DISASSOCIATE or REVOKE.
    public var type: EventType
    public var error: ErrorResponse?

    public init(
        assignments: [Assignment]?,
        eventId: String,
        result: NotificationResult,
        type: EventType,
        error: ErrorResponse? = nil
    ) {
        self.assignments = assignments
        self.eventId = eventId
        self.result = result
        self.type = type
        self.error = error
    }
}

/// `USER_MANAGEMENT`: some of a users event's users (at most 100 per notification) and how they ended.
public struct UserManagementNotification: Codable, Hashable, Sendable {
    public var eventId: String
    public var result: NotificationResult
    /// CREATE, UPDATE or RETIRE.
    public var type: EventType
    public var users: [ResponseUser]?
    public var error: ErrorResponse?

    public init(
        eventId: String,
        result: NotificationResult,
        type: EventType,
        users: [ResponseUser]?,
        error: ErrorResponse? = nil
    ) {
        self.eventId = eventId
        self.result = result
        self.type = type
        self.users = users
        self.error = error
    }
}

/// `USER_ASSOCIATED`: users accepted their invitation (at most 100 per notification).
public struct UserAssociatedNotification: Codable, Hashable, Sendable {
    public var associatedUsers: [ResponseUser]

    public init(associatedUsers: [ResponseUser]) {
        self.associatedUsers = associatedUsers
    }
}

extension NotificationHeader {
    /// Reads the header of a notification body; throws `DecodingError` when it is not one.
    public static func decode(_ body: Data) throws -> NotificationHeader {
        try JSONDecoder().decode(NotificationHeader.self, from: body)
    }
}

extension NotificationEnvelope {
    public static func decode(_ body: Data) throws -> Self {
        try JSONDecoder().decode(Self.self, from: body)
    }
}

/// The most elements (assignments, users) Apple puts in one notification.
public let maxNotificationElements = 100
