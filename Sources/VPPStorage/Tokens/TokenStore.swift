public import Foundation
public import Logging
public import VPPPostgres

/// A tenant's VPP token as stored (R1-R6). The token file itself is never part of a record: `TokenStore.credential`
/// opens it when a sync needs it.
public struct TokenRecord: Sendable, Hashable {
    public enum AccountType: String, Sendable, Hashable {
        case business
        case education
    }

    /// What Apple said about the token last.
    public enum Status: String, Sendable, Hashable {
        case active
        case expired
        /// Apple refused it: invalid (9622) or revoked (9625).
        case invalid
        /// R4: another MDM claimed it.
        case claimedElsewhere = "claimed_elsewhere"
    }

    /// The state shown to people (R6): the status, with the expiry date taken into account.
    public enum State: String, Sendable, Hashable, CaseIterable {
        case valid
        case expiringSoon
        case expired
        case claimedElsewhere
        case invalid
    }

    public struct LastSync: Sendable, Hashable {
        public var jobID: UUID?
        public var startedAt: Date?
        public var finishedAt: Date?
        /// "succeeded", "failed", "cancelled", or "" before the first sync ends.
        public var result: String
        public var error: String
    }

    public var id: UUID
    public var displayName: String
    public var appleID: String
    public var accountType: AccountType
    public var organizationName: String
    public var locationUID: String
    public var locationName: String
    public var countryCode: String
    public var expiresAt: Date
    public var status: Status
    public var statusReason: String
    public var otherMDMName: String
    public var appCount: Int
    public var bookCount: Int
    public var skippedAssetCount: Int
    public var userCount: Int
    public var foreignUserCount: Int
    public var assignmentCount: Int64
    public var foreignAssignmentCount: Int64
    public var lastSync: LastSync
    public var createdAt: Date
    public var updatedAt: Date
    /// From the control registry; nil when the token does not sync on schedule (dead or claimed elsewhere).
    public var nextSyncAt: Date?
    /// Apple's notifications for this token (issue 18).
    public var notifications = NotificationStatus()

    /// Whether Apple sends this token's events to this service, and how that goes.
    public struct NotificationStatus: Sendable, Hashable {
        /// The URL registered at Apple; empty when the token is not subscribed (polling only).
        public var url = ""
        public var subscribedAt: Date?
        /// Why the last subscription failed (Apple could not reach the URL: 9728), or "".
        public var lastError = ""
        public var lastReceivedAt: Date?
        public var lastType = ""
        public var receivedCount: Int64 = 0
        /// Notifications refused: a wrong bearer token for this token's URL.
        public var refusedCount: Int64 = 0
        /// When a poll last found an event finished that no notification had reported.
        public var missedAt: Date?

        public init() {}

        public var subscribed: Bool { !self.url.isEmpty }

        /// Notifications arrive: subscribed, and nothing was missed since the last one came.
        public var flowing: Bool {
            guard self.subscribed else { return false }
            guard let missedAt = self.missedAt else { return true }
            return (self.lastReceivedAt ?? .distantPast) > missedAt
        }
    }

    /// R6: "expiring soon" is within this long of the expiry date.
    public static let expiringSoonWindow: TimeInterval = 30 * 24 * 3600

    public func state(at now: Date) -> State {
        Self.state(status: self.status, expiresAt: self.expiresAt, at: now)
    }

    public static func state(status: Status, expiresAt: Date, at now: Date) -> State {
        switch status {
        case .invalid: return .invalid
        case .claimedElsewhere: return .claimedElsewhere
        case .expired: return .expired
        case .active:
            if expiresAt <= now { return .expired }
            if expiresAt.timeIntervalSince(now) <= expiringSoonWindow { return .expiringSoon }
            return .valid
        }
    }
}

/// What an upload stores.
public struct NewToken: Sendable {
    public var id: UUID
    public var displayName: String
    public var appleID: String
    public var accountType: TokenRecord.AccountType
    public var organizationName: String
    public var locationUID: String
    public var locationName: String
    public var countryCode: String
    public var expiresAt: Date
    /// The `.vpptoken` text (the bearer credential); sealed before it is stored.
    public var credential: String
    public var firstSyncAt: Date

    public init(
        id: UUID = UUID(),
        displayName: String,
        appleID: String,
        accountType: TokenRecord.AccountType,
        organizationName: String,
        locationUID: String,
        locationName: String,
        countryCode: String,
        expiresAt: Date,
        credential: String,
        firstSyncAt: Date
    ) {
        self.id = id
        self.displayName = displayName
        self.appleID = appleID
        self.accountType = accountType
        self.organizationName = organizationName
        self.locationUID = locationUID
        self.locationName = locationName
        self.countryCode = countryCode
        self.expiresAt = expiresAt
        self.credential = credential
        self.firstSyncAt = firstSyncAt
    }
}

/// What deleting a token removed (DeleteToken's answer).
public struct TokenDeletion: Sendable, Hashable {
    public var removedAssets: Int
    public var removedAssignments: Int
    public var forgottenLicenses: Int
}

/// The versions Apple gave for incremental reads (`sinceVersionId`).
public struct TokenSyncVersions: Sendable, Hashable {
    public var assets: String?
    public var users: String?
    public var assignments: String?
    /// When the last full read ended (removals are seen only by full reads).
    public var lastFullSyncAt: Date?

    public init(assets: String? = nil, users: String? = nil, assignments: String? = nil, lastFullSyncAt: Date? = nil) {
        self.assets = assets
        self.users = users
        self.assignments = assignments
        self.lastFullSyncAt = lastFullSyncAt
    }
}

/// A tenant's tokens: rows in the tenant's schema, plus the control registry that enforces one tenant per Apple
/// location (C4) and the tenant's token limit (C5), and schedules syncs.
public struct TokenStore: Sendable {
    let storage: Storage
    let cipher: TokenCipher
    let logger: Logger

    public init(storage: Storage, cipher: TokenCipher, logger: Logger) {
        self.storage = storage
        self.cipher = cipher
        self.logger = logger
    }

    static let columns = """
        id, display_name, apple_id, account_type, organization_name, location_uid, location_name, country_code,
        expires_at, status, status_reason, other_mdm_name, app_count, book_count, skipped_asset_count, user_count,
        foreign_user_count, assignment_count, foreign_assignment_count, last_sync_job_id, last_sync_started_at,
        last_sync_finished_at, last_sync_result, last_sync_error, created_at, updated_at, notification_url,
        notification_subscribed_at, notification_error, notification_last_received_at, notification_last_type,
        notification_received_count, notification_refused_count, notification_missed_at
        """

    /// The number of `columns`.
    static let columnCount = 34

    static func decode(_ row: PostgresRow) throws -> TokenRecord {
        var record = TokenRecord(
            id: try row.decode(UUID.self, at: 0),
            displayName: try row.decode(String.self, at: 1),
            appleID: try row.decode(String.self, at: 2),
            accountType: TokenRecord.AccountType(rawValue: try row.decode(String.self, at: 3)) ?? .business,
            organizationName: try row.decode(String.self, at: 4),
            locationUID: try row.decode(String.self, at: 5),
            locationName: try row.decode(String.self, at: 6),
            countryCode: try row.decode(String.self, at: 7),
            expiresAt: try row.decode(Date.self, at: 8),
            status: TokenRecord.Status(rawValue: try row.decode(String.self, at: 9)) ?? .invalid,
            statusReason: try row.decode(String.self, at: 10),
            otherMDMName: try row.decode(String.self, at: 11),
            appCount: try row.decode(Int.self, at: 12),
            bookCount: try row.decode(Int.self, at: 13),
            skippedAssetCount: try row.decode(Int.self, at: 14),
            userCount: try row.decode(Int.self, at: 15),
            foreignUserCount: try row.decode(Int.self, at: 16),
            assignmentCount: try row.decode(Int64.self, at: 17),
            foreignAssignmentCount: try row.decode(Int64.self, at: 18),
            lastSync: TokenRecord.LastSync(
                jobID: try row.decode(UUID?.self, at: 19),
                startedAt: try row.decode(Date?.self, at: 20),
                finishedAt: try row.decode(Date?.self, at: 21),
                result: try row.decode(String.self, at: 22),
                error: try row.decode(String.self, at: 23)
            ),
            createdAt: try row.decode(Date.self, at: 24),
            updatedAt: try row.decode(Date.self, at: 25),
            nextSyncAt: nil
        )
        record.notifications.url = try row.decode(String.self, at: 26)
        record.notifications.subscribedAt = try row.decode(Date?.self, at: 27)
        record.notifications.lastError = try row.decode(String.self, at: 28)
        record.notifications.lastReceivedAt = try row.decode(Date?.self, at: 29)
        record.notifications.lastType = try row.decode(String.self, at: 30)
        record.notifications.receivedCount = try row.decode(Int64.self, at: 31)
        record.notifications.refusedCount = try row.decode(Int64.self, at: 32)
        record.notifications.missedAt = try row.decode(Date?.self, at: 33)
        return record
    }

    // MARK: Upload

    /// Stores a new token. In one transaction: the tenant's row is locked (so two uploads of one tenant count one after
    /// the other: C5, R2), the registry row is inserted (its UNIQUE location decides races between tenants: C4, R5),
    /// then `alsoInTransaction` runs with the token's id (the upload queues the token's first sync there: a token is
    /// never stored without the job that claims and reads it, issue 16), then the token's row is written in the
    /// tenant's schema.
    public func insert(
        tenantID: UUID,
        _ token: NewToken,
        alsoInTransaction: (@Sendable (_ tokenID: UUID, PostgresTransaction) async throws -> Void)? = nil
    ) async throws -> TokenRecord {
        try await self.storage.requireActive(tenantID)
        let sealed = try self.cipher.seal(token.credential, tenantID: tenantID, tokenID: token.id)
        let schema = TenantSchema(tenantID: tenantID)
        return try await self.storage.pool.transaction { transaction in
            let tenant = try await transaction.query(
                "SELECT token_limit FROM vpp_control.tenants WHERE id = \(tenantID) FOR UPDATE"
            )
            guard let limitRow = tenant.first else {
                throw StorageError.notFound("The tenant of this key no longer exists.")
            }
            let limit = try limitRow.decode(Int.self, at: 0)
            let held = try await transaction.query(
                "SELECT count(*)::bigint FROM vpp_control.token_registry WHERE tenant_id = \(tenantID)"
            ).single().decode(Int.self, at: 0)
            // C5, R2: the limit, checked under the tenant row's lock.
            guard held < limit else {
                throw StorageError.resourceExhausted(
                    "This tenant holds \(held) VPP tokens, its limit (\(limit)); delete a token or ask the platform operator to raise the limit."
                )
            }
            // C4, R5: one tenant per Apple location. ON CONFLICT waits for a concurrent insert of the same location to
            // commit, so of two tenants uploading at once exactly one row is written.
            let inserted = try await transaction.query(
                """
                INSERT INTO vpp_control.token_registry (token_id, tenant_id, location_uid, next_sync_at)
                VALUES (\(token.id), \(tenantID), \(token.locationUID), \(token.firstSyncAt))
                ON CONFLICT (location_uid) DO NOTHING
                RETURNING token_id
                """
            )
            if inserted.isEmpty {
                let holder = try await transaction.query(
                    "SELECT tenant_id, token_id FROM vpp_control.token_registry WHERE location_uid = \(token.locationUID)"
                )
                if let row = holder.first, try row.decode(UUID.self, at: 0) == tenantID {
                    let existing = try row.decode(UUID.self, at: 1)
                    throw StorageError.alreadyExists(
                        "This tenant already holds a token for this Apple location (token \(existing.lowercasedText)); use RenewToken to replace its file."
                    )
                }
                throw StorageError.alreadyExists(
                    "This token's Apple location is already managed by another tenant of this service; a VPP token belongs to one tenant at a time (C4, R5). Remove it there first, or use a token of another location."
                )
            }
            // Still as the platform's role: the job queue is in the control schema.
            try await alsoInTransaction?(token.id, transaction)
            try await schema.enter(transaction)
            let row = try await transaction.query(
                """
                INSERT INTO tokens (id, display_name, apple_id, account_type, organization_name, location_uid,
                                    location_name, country_code, expires_at, secret, secret_key_id)
                VALUES (\(token.id), \(token.displayName), \(token.appleID), \(token.accountType.rawValue),
                        \(token.organizationName), \(token.locationUID), \(token.locationName), \(token.countryCode),
                        \(token.expiresAt), \(sealed), \(self.cipher.keyID))
                RETURNING \(unescaped: Self.columns)
                """
            ).single()
            var record = try Self.decode(row)
            record.nextSyncAt = token.firstSyncAt
            return record
        }
    }

    // MARK: Reads

    public func get(tenantID: UUID, _ tokenID: UUID) async throws -> TokenRecord {
        var record = try await self.storage.withTenant(tenantID) { transaction in
            let rows = try await transaction.query(
                "SELECT \(unescaped: Self.columns) FROM tokens WHERE id = \(tokenID)"
            )
            // Another tenant's id reads exactly like an unknown one (C3).
            guard let row = rows.first else { throw Self.notFound(tokenID) }
            return try Self.decode(row)
        }
        record.nextSyncAt = try await self.nextSyncTimes([tokenID])[tokenID]
        return record
    }

    /// The tenant's token for an Apple location, if it holds one.
    public func tokenID(tenantID: UUID, locationUID: String) async throws -> UUID? {
        try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query("SELECT id FROM tokens WHERE location_uid = \(locationUID)").first?.decode(
                UUID.self,
                at: 0
            )
        }
    }

    static func notFound(_ tokenID: UUID) -> StorageError {
        .notFound("No token with id \(tokenID.lowercasedText).")
    }

    /// One page of the tenant's tokens in upload order; `state` filters on the shown state (R6).
    public func list(
        tenantID: UUID,
        state: TokenRecord.State?,
        pageSize: Int,
        after token: PageToken?,
        now: Date = Date()
    ) async throws -> (tokens: [TokenRecord], next: PageToken?) {
        let cursor = try CreationCursor(token)
        // The shown state depends on the clock: computed in SQL with the same rules as `TokenRecord.state(at:)`.
        let soon = now.addingTimeInterval(TokenRecord.expiringSoonWindow)
        var (tokens, next) = try await self.storage.withTenant(tenantID) { transaction in
            let rows = try await transaction.query(
                """
                SELECT \(unescaped: Self.columns), \(unescaped: CreationCursor.microsColumn)
                FROM tokens
                WHERE (\(cursor?.id)::uuid IS NULL
                       OR (created_at, id) > ('epoch'::timestamptz + \(cursor?.micros)::bigint * interval '1 microsecond',
                                             \(cursor?.id)::uuid))
                  AND (\(state?.rawValue)::text IS NULL OR \(state?.rawValue) =
                       CASE WHEN status = 'invalid' THEN 'invalid'
                            WHEN status = 'claimed_elsewhere' THEN 'claimedElsewhere'
                            WHEN status = 'expired' OR expires_at <= \(now) THEN 'expired'
                            WHEN expires_at <= \(soon) THEN 'expiringSoon'
                            ELSE 'valid' END)
                ORDER BY created_at, id
                LIMIT \(pageSize + 1)
                """
            )
            return try CreationCursor.page(rows, pageSize: pageSize, decode: Self.decode, id: \.id)
        }
        let times = try await self.nextSyncTimes(tokens.map(\.id))
        for index in tokens.indices { tokens[index].nextSyncAt = times[tokens[index].id] }
        return (tokens, next)
    }

    /// When each token syncs next on schedule (from the control registry; absent when it does not).
    func nextSyncTimes(_ ids: [UUID]) async throws -> [UUID: Date] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await self.storage.pool.query(
            """
            SELECT token_id, next_sync_at FROM vpp_control.token_registry
            WHERE token_id = ANY(\(ids)) AND sync_enabled
            """
        )
        var times: [UUID: Date] = [:]
        for row in rows { times[try row.decode(UUID.self, at: 0)] = try row.decode(Date.self, at: 1) }
        return times
    }

    /// The token with its opened credential, for calls to Apple. Works for a suspended tenant too (the caller decides
    /// whether to go on); never logs the credential.
    public func credential(tenantID: UUID, _ tokenID: UUID) async throws -> (
        record: TokenRecord, credential: String, versions: TokenSyncVersions
    ) {
        try await self.storage.withTenant(tenantID) { transaction in
            let rows = try await transaction.query(
                """
                SELECT \(unescaped: Self.columns), secret, secret_key_id, assets_version, users_version, assignments_version,
                       last_full_sync_at
                FROM tokens WHERE id = \(tokenID)
                """
            )
            guard let row = rows.first else { throw Self.notFound(tokenID) }
            let record = try Self.decode(row)
            let base = Self.columnCount
            let credential = try self.cipher.open(
                try row.decode(String.self, at: base),
                keyID: try row.decode(String.self, at: base + 1),
                tenantID: tenantID,
                tokenID: tokenID
            )
            let versions = TokenSyncVersions(
                assets: try row.decode(String?.self, at: base + 2),
                users: try row.decode(String?.self, at: base + 3),
                assignments: try row.decode(String?.self, at: base + 4),
                lastFullSyncAt: try row.decode(Date?.self, at: base + 5)
            )
            return (record, credential, versions)
        }
    }

    // MARK: Changes

    /// R3: a new file for the same location replaces the old one; apps, assignments and licenses stay. The caller has
    /// checked (at Apple) that the file is for this token's location.
    public func renew(
        tenantID: UUID,
        _ tokenID: UUID,
        credential: String,
        expiresAt: Date,
        organizationName: String,
        locationName: String
    ) async throws -> TokenRecord {
        let sealed = try self.cipher.seal(credential, tenantID: tenantID, tokenID: tokenID)
        let record = try await self.storage.withTenant(tenantID) { transaction in
            let rows = try await transaction.query(
                """
                UPDATE tokens SET secret = \(sealed), secret_key_id = \(self.cipher.keyID), expires_at = \(expiresAt),
                    organization_name = \(organizationName),
                    location_name = CASE WHEN \(locationName) = '' THEN location_name ELSE \(locationName) END,
                    status = 'active', status_reason = '', other_mdm_name = '', updated_at = clock_timestamp()
                WHERE id = \(tokenID)
                RETURNING \(unescaped: Self.columns)
                """
            )
            guard let row = rows.first else { throw Self.notFound(tokenID) }
            return try Self.decode(row)
        }
        try await self.storage.pool.query(
            "UPDATE vpp_control.token_registry SET sync_enabled = true WHERE token_id = \(tokenID) AND tenant_id = \(tenantID)"
        )
        return record
    }

    /// Records what Apple said about the token. A status other than `active` stops its scheduled syncs until it is
    /// renewed (R3, R4).
    public func setStatus(
        tenantID: UUID,
        _ tokenID: UUID,
        _ status: TokenRecord.Status,
        reason: String,
        otherMDMName: String = ""
    ) async throws {
        try await self.storage.pool.transaction { transaction in
            try await transaction.query(
                """
                UPDATE vpp_control.token_registry SET sync_enabled = \(status == .active)
                WHERE token_id = \(tokenID) AND tenant_id = \(tenantID)
                """
            )
            try await TenantSchema(tenantID: tenantID).enter(transaction)
            try await transaction.query(
                """
                UPDATE tokens SET status = \(status.rawValue), status_reason = \(reason), other_mdm_name = \(otherMDMName),
                    updated_at = clock_timestamp()
                WHERE id = \(tokenID)
                """
            )
        }
    }

    /// Deletes the token and everything synced for it; the registry row goes too, so the location can be uploaded
    /// again (by this tenant or another).
    public func delete(tenantID: UUID, _ tokenID: UUID) async throws -> TokenDeletion {
        try await self.storage.requireActive(tenantID)
        return try await self.storage.pool.transaction { transaction in
            try await transaction.query(
                "DELETE FROM vpp_control.token_registry WHERE token_id = \(tokenID) AND tenant_id = \(tenantID)"
            )
            try await TenantSchema(tenantID: tenantID).enter(transaction)
            let counts = try await transaction.query(
                """
                SELECT (SELECT count(*) FROM assets WHERE token_id = \(tokenID))::bigint,
                       (SELECT count(*) FROM apple_assignments WHERE token_id = \(tokenID))::bigint
                """
            ).single()
            let deleted = try await transaction.query("DELETE FROM tokens WHERE id = \(tokenID) RETURNING id")
            guard !deleted.isEmpty else { throw Self.notFound(tokenID) }
            // Assignments to groups (issue 6) will be counted here too; until then there are none.
            return TokenDeletion(
                removedAssets: try counts.decode(Int.self, at: 0),
                removedAssignments: 0,
                forgottenLicenses: try counts.decode(Int.self, at: 1)
            )
        }
    }
}

extension Storage {
    /// The number of tokens each tenant holds (for the operator's tenant views).
    public func tokenCounts(tenantIDs: [UUID]) async throws -> [UUID: Int] {
        guard !tenantIDs.isEmpty else { return [:] }
        let rows = try await self.pool.query(
            """
            SELECT tenant_id, count(*)::bigint FROM vpp_control.token_registry
            WHERE tenant_id = ANY(\(tenantIDs)) GROUP BY tenant_id
            """
        )
        var counts: [UUID: Int] = [:]
        for row in rows { counts[try row.decode(UUID.self, at: 0)] = try row.decode(Int.self, at: 1) }
        return counts
    }
}
