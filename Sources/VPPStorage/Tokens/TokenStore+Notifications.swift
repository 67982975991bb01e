import Crypto
public import Foundation
public import VPPPostgres

extension Storage {
    /// NOTIFY channel of Apple's event notifications: the payload is the event id. A push waiting for that event (in
    /// any server) reads what arrived at once instead of at its next poll.
    public static let appleEventsChannel = "vpp_apple_events"
}

/// One notification from Apple as recorded (issue 18).
public struct ReceivedNotification: Sendable, Hashable {
    public var tokenID: UUID
    public var notificationID: String
    public var type: String
    public var eventID: String?
    /// The JSON body exactly as Apple sent it.
    public var body: String
    public var receivedAt: Date
    public var processedAt: Date?
    /// What processing did, in words ("" until processed).
    public var outcome: String
}

/// How a notification's bearer token compares with the one registered for its URL's token.
public enum NotificationBearerCheck: Sendable, Hashable {
    /// It matches; the token's Apple location is `locationUID`.
    case accepted(locationUID: String)
    /// No such tenant or token, or the token has no auth token registered.
    case unknown
    /// The token exists but the bearer does not match (counted on the token).
    case refused
}

extension TokenStore {
    /// The token's notification auth token (what Apple sends back as `Authorization: Bearer …`): 32 random bytes,
    /// made and stored sealed (as the token file is) the first time it is asked for, then kept across renewals.
    public func notificationSecret(tenantID: UUID, _ tokenID: UUID) async throws -> String {
        let fresh = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        let sealed = try self.cipher.seal(fresh, tenantID: tenantID, tokenID: tokenID)
        let (stored, keyID) = try await self.storage.withTenant(tenantID) { transaction in
            // Concurrent callers keep the first one written.
            let rows = try await transaction.query(
                """
                UPDATE tokens SET notification_secret = coalesce(notification_secret, \(sealed))
                WHERE id = \(tokenID)
                RETURNING notification_secret, secret_key_id
                """
            )
            guard let row = rows.first else { throw Self.notFound(tokenID) }
            return (try row.decode(String.self, at: 0), try row.decode(String.self, at: 1))
        }
        if stored == sealed { return fresh }
        return try self.cipher.open(stored, keyID: keyID, tenantID: tenantID, tokenID: tokenID)
    }

    /// Records the outcome of registering notifications at Apple: the URL registered, or why it failed (the URL
    /// registered before, if any, stays what Apple holds: a refused configuration changes nothing there).
    public func recordSubscription(tenantID: UUID, _ tokenID: UUID, url: String?, error: String) async throws {
        _ = try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                UPDATE tokens SET notification_url = coalesce(\(url), notification_url),
                    notification_subscribed_at = CASE WHEN \(url)::text IS NULL THEN notification_subscribed_at
                                                      ELSE clock_timestamp() END,
                    notification_error = \(error)
                WHERE id = \(tokenID)
                """
            )
        }
    }

    /// Checks a notification's bearer token against the token's, in constant time.
    public func checkNotificationBearer(tenantID: UUID, _ tokenID: UUID, bearer: String) async throws
        -> NotificationBearerCheck
    {
        let found: (String?, String, String)?
        do {
            found = try await self.storage.withTenant(tenantID) { transaction in
                try await transaction.query(
                    "SELECT notification_secret, secret_key_id, location_uid FROM tokens WHERE id = \(tokenID)"
                ).first.map {
                    (
                        try $0.decode(String?.self, at: 0), try $0.decode(String.self, at: 1),
                        try $0.decode(String.self, at: 2)
                    )
                }
            }
        } catch let error as StorageError {
            guard case .notFound = error else { throw error }
            return .unknown
        }
        guard let (sealed, keyID, location) = found, let sealed else { return .unknown }
        let secret = try self.cipher.open(sealed, keyID: keyID, tenantID: tenantID, tokenID: tokenID)
        if Self.constantTimeEqual(secret, bearer) { return .accepted(locationUID: location) }
        _ = try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                "UPDATE tokens SET notification_refused_count = notification_refused_count + 1 WHERE id = \(tokenID)"
            )
        }
        return .refused
    }

    /// Equal strings in time that depends on neither (both are hashed first, so not even on their lengths).
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let left = Array(SHA256.hash(data: Data(a.utf8)))
        let right = Array(SHA256.hash(data: Data(b.utf8)))
        var difference: UInt8 = 0
        for index in 0..<left.count { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    /// Records a notification once: a repeat (same `notificationID`) changes nothing but the time of the last one
    /// received, and returns false. A new one also runs `alsoInTransaction` (as the platform's role: the job that
    /// processes it is queued there) and announces its event on `Storage.appleEventsChannel`.
    public func recordNotification(
        tenantID: UUID,
        _ tokenID: UUID,
        notificationID: String,
        type: String,
        eventID: String?,
        body: String,
        alsoInTransaction: @Sendable (PostgresTransaction) async throws -> Void
    ) async throws -> Bool {
        try await self.storage.withTenant(tenantID) { transaction in
            let inserted = try await transaction.query(
                """
                INSERT INTO apple_notifications (token_id, notification_id, type, event_id, body)
                VALUES (\(tokenID), \(notificationID), \(type), \(eventID), \(body))
                ON CONFLICT DO NOTHING
                RETURNING notification_id
                """
            )
            let isNew = !inserted.isEmpty
            try await transaction.query(
                """
                UPDATE tokens SET notification_last_received_at = clock_timestamp(), notification_last_type = \(type),
                    notification_received_count = notification_received_count + \(isNew ? 1 : 0)
                WHERE id = \(tokenID)
                """
            )
            guard isNew else { return false }
            if let eventID {
                try await transaction.query("SELECT pg_notify(\(Storage.appleEventsChannel), \(eventID))")
            }
            try await transaction.simpleQuery("RESET ROLE; SET LOCAL search_path TO vpp_control")
            try await alsoInTransaction(transaction)
            return true
        }
    }

    static let notificationColumns =
        "token_id, notification_id, type, event_id, body, received_at, processed_at, outcome"

    static func decodeNotification(_ row: PostgresRow) throws -> ReceivedNotification {
        ReceivedNotification(
            tokenID: try row.decode(UUID.self, at: 0),
            notificationID: try row.decode(String.self, at: 1),
            type: try row.decode(String.self, at: 2),
            eventID: try row.decode(String?.self, at: 3),
            body: try row.decode(String.self, at: 4),
            receivedAt: try row.decode(Date.self, at: 5),
            processedAt: try row.decode(Date?.self, at: 6),
            outcome: try row.decode(String.self, at: 7)
        )
    }

    public func notification(tenantID: UUID, _ tokenID: UUID, notificationID: String) async throws
        -> ReceivedNotification?
    {
        try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                SELECT \(unescaped: Self.notificationColumns) FROM apple_notifications
                WHERE token_id = \(tokenID) AND notification_id = \(notificationID)
                """
            ).first.map(Self.decodeNotification)
        }
    }

    /// Every notification received about one of the token's events, oldest first.
    public func eventNotifications(tenantID: UUID, _ tokenID: UUID, eventID: String) async throws
        -> [ReceivedNotification]
    {
        try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                SELECT \(unescaped: Self.notificationColumns) FROM apple_notifications
                WHERE token_id = \(tokenID) AND event_id = \(eventID)
                ORDER BY received_at, notification_id
                """
            ).map(Self.decodeNotification)
        }
    }

    /// The token's newest notifications, newest first.
    public func recentNotifications(tenantID: UUID, _ tokenID: UUID, limit: Int) async throws
        -> [ReceivedNotification]
    {
        try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                SELECT \(unescaped: Self.notificationColumns) FROM apple_notifications
                WHERE token_id = \(tokenID) ORDER BY received_at DESC, notification_id LIMIT \(limit)
                """
            ).map(Self.decodeNotification)
        }
    }

    public func markNotificationProcessed(tenantID: UUID, _ tokenID: UUID, notificationID: String, outcome: String)
        async throws
    {
        _ = try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                UPDATE apple_notifications SET processed_at = clock_timestamp(), outcome = \(outcome)
                WHERE token_id = \(tokenID) AND notification_id = \(notificationID)
                """
            )
        }
    }

    /// A poll found an event finished that no notification reported: the token's polling goes back to its fast pace
    /// until a notification arrives again.
    public func recordMissedNotification(tenantID: UUID, _ tokenID: UUID) async throws {
        _ = try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                "UPDATE tokens SET notification_missed_at = clock_timestamp() WHERE id = \(tokenID)"
            )
        }
    }

    /// Forgets the token's notifications received before `cutoff` (processed or not: Apple's own retries end within
    /// minutes, so an old one can no longer be repeated).
    public func pruneNotifications(tenantID: UUID, _ tokenID: UUID, receivedBefore cutoff: Date) async throws {
        _ = try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                "DELETE FROM apple_notifications WHERE token_id = \(tokenID) AND received_at < \(cutoff)"
            )
        }
    }
}
