import AppleVPP
import Foundation

/// A notification ready to go: its envelope encoded, with the location's `notificationUrl` and token as they were
/// when it was produced (a later change of the client config does not re-point it).
struct OutgoingNotification: Sendable {
    var id: String
    var type: NotificationType
    var uId: String
    var url: String
    var token: String
    var body: Data

    static func make<Payload: Codable & Hashable & Sendable>(
        _ type: NotificationType,
        _ payload: Payload,
        uId: String,
        url: String,
        token: String
    ) -> Self {
        let id = UUID().uuidString.lowercased()
        let envelope = NotificationEnvelope(notification: payload, notificationId: id, notificationType: type, uId: uId)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // The payloads are plain strings and numbers: encoding them cannot fail.
        let body = (try? encoder.encode(envelope)) ?? Data("{}".utf8)
        return Self(id: id, type: type, uId: uId, url: url, token: token, body: body)
    }
}

extension LocationState {
    /// Whether a notification of `type` goes out now: the MDM set a URL and a token, and subscribed to the type. An
    /// MDM that set a URL but no `notificationTypes` gets every type (the simulator's choice: Apple's documents do not
    /// say; `TEST_NOTIFICATION` goes out whatever the list says).
    func wants(_ type: NotificationType) -> Bool {
        guard notificationUrl != nil, notificationAuthToken != nil else { return false }
        return subscribedNotificationTypes.isEmpty || subscribedNotificationTypes.contains(type.rawValue)
    }

    /// Queues a notification in `outbox` when the location wants its type; the simulator sends it once its lock is
    /// released.
    mutating func notify<Payload: Codable & Hashable & Sendable>(_ type: NotificationType, _ payload: Payload) {
        guard wants(type), let url = notificationUrl, let token = notificationAuthToken else { return }
        outbox.append(.make(type, payload, uId: uId, url: url, token: token))
    }

    /// `ASSET_COUNT`: an asset's licenses changed by `countDelta` (purchase +, refund or transfer away −).
    mutating func notifyAssetCount(_ key: AssetKey, countDelta: Int) {
        guard countDelta != 0 else { return }
        notify(
            .assetCount,
            AssetCountNotification(adamId: key.adamId, pricingParam: key.pricingParam, countDelta: countDelta)
        )
    }

    /// `ASSET_MANAGEMENT` for an event: SUCCESS notifications listing `done`, and one FAILURE notification per error
    /// number listing the assignments it failed (a notification carries at most one `error`, reference §3), each
    /// split so that none lists more than `maxNotificationElements` (100). With `successWhenEmpty` (revoke), an event
    /// that removed nothing still sends one SUCCESS with an empty list.
    mutating func notifyAssetManagement(
        eventId: String,
        type: EventType,
        done: [AssignmentKey],
        failed: [(number: Int, keys: [AssignmentKey])] = [],
        successWhenEmpty: Bool = false
    ) {
        guard wants(.assetManagement) else { return }
        let assignment = { (key: AssignmentKey) in Self.notificationAssignment(key) }
        if done.isEmpty, successWhenEmpty {
            notify(
                .assetManagement,
                AssetManagementNotification(assignments: [], eventId: eventId, result: .success, type: type)
            )
        }
        for chunk in done.chunked(maxNotificationElements) {
            notify(
                .assetManagement,
                AssetManagementNotification(
                    assignments: chunk.map(assignment),
                    eventId: eventId,
                    result: .success,
                    type: type
                )
            )
        }
        for (number, keys) in failed {
            let error = ErrorResponse(errorNumber: number, errorMessage: AppleErrorCatalogue.messages[number])
            for chunk in keys.chunked(maxNotificationElements) {
                notify(
                    .assetManagement,
                    AssetManagementNotification(
                        assignments: chunk.map(assignment),
                        eventId: eventId,
                        result: .failure,
                        type: type,
                        error: error
                    )
                )
            }
        }
    }

    /// `USER_MANAGEMENT` for an event: SUCCESS listing the users done as `GET /users` shows them now, one FAILURE per
    /// error number listing the users it concerns, at most 100 users per notification. A user the location does not
    /// know (9609) is listed with its `clientUserId` and status `Deleted` (Apple's documents show no such case).
    mutating func notifyUserManagement(
        eventId: String,
        type: EventType,
        done: [String],
        failed: [(number: Int, ids: [String])]
    ) {
        guard wants(.userManagement) else { return }
        let user = { (id: String) in
            self.users[id]?.response ?? ResponseUser(clientUserId: id, status: .deleted)
        }
        for chunk in done.chunked(maxNotificationElements) {
            notify(
                .userManagement,
                UserManagementNotification(eventId: eventId, result: .success, type: type, users: chunk.map(user))
            )
        }
        for (number, ids) in failed {
            let error = ErrorResponse(errorNumber: number, errorMessage: AppleErrorCatalogue.messages[number])
            for chunk in ids.chunked(maxNotificationElements) {
                notify(
                    .userManagement,
                    UserManagementNotification(
                        eventId: eventId,
                        result: .failure,
                        type: type,
                        users: chunk.map(user),
                        error: error
                    )
                )
            }
        }
    }

    /// `USER_ASSOCIATED`: users accepted their invitation, as `GET /users` shows them (Associated, with `idHash`).
    mutating func notifyUserAssociated(_ ids: [String]) {
        guard wants(.userAssociated) else { return }
        for chunk in ids.chunked(maxNotificationElements) {
            let associated = chunk.compactMap { self.users[$0]?.response }
            guard !associated.isEmpty else { continue }
            notify(.userAssociated, UserAssociatedNotification(associatedUsers: associated))
        }
    }

    /// An assignment as notifications list it: the asset and either `clientUserId` or `serialNumber`.
    static func notificationAssignment(_ key: AssignmentKey) -> Assignment {
        switch key.subject {
        case .user(let id):
            Assignment(adamId: key.asset.adamId, pricingParam: key.asset.pricingParam, clientUserId: id)
        case .device(let serial):
            Assignment(adamId: key.asset.adamId, pricingParam: key.asset.pricingParam, serialNumber: serial)
        }
    }
}

extension Array {
    /// Consecutive slices of at most `size` elements (none for an empty array).
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
