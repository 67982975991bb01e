public import Foundation
import VPPPostgres

/// An asset as a sync read it from Apple, with its public metadata.
public struct SyncedAsset: Sendable, Hashable {
    public var adamID: String
    public var pricingParam: String
    public var productType: String
    public var name: String
    public var bundleID: String
    public var artworkURL: String
    public var platforms: [String]
    public var deviceAssignable: Bool
    public var revocable: Bool
    public var unlimited: Bool
    public var totalCount: Int
    public var assignedCount: Int
    public var availableCount: Int
    public var retiredCount: Int

    public init(
        adamID: String,
        pricingParam: String,
        productType: String,
        name: String,
        bundleID: String,
        artworkURL: String,
        platforms: [String],
        deviceAssignable: Bool,
        revocable: Bool,
        unlimited: Bool,
        totalCount: Int,
        assignedCount: Int,
        availableCount: Int,
        retiredCount: Int
    ) {
        self.adamID = adamID
        self.pricingParam = pricingParam
        self.productType = productType
        self.name = name
        self.bundleID = bundleID
        self.artworkURL = artworkURL
        self.platforms = platforms
        self.deviceAssignable = deviceAssignable
        self.revocable = revocable
        self.unlimited = unlimited
        self.totalCount = totalCount
        self.assignedCount = assignedCount
        self.availableCount = availableCount
        self.retiredCount = retiredCount
    }
}

/// A VPP user as Apple reports it.
public struct SyncedUser: Sendable, Hashable {
    public var clientUserID: String
    public var email: String
    public var status: String
    public var idHash: String
    public var inviteCode: String
    /// R20: the invitation link built from `inviteCode` and Apple's template; empty once accepted.
    public var invitationURL: String

    public init(
        clientUserID: String,
        email: String,
        status: String,
        idHash: String,
        inviteCode: String,
        invitationURL: String = ""
    ) {
        self.clientUserID = clientUserID
        self.email = email
        self.status = status
        self.idHash = idHash
        self.inviteCode = inviteCode
        self.invitationURL = invitationURL
    }
}

/// An assignment (license) as Apple reports it: to a user or to a device.
public struct SyncedAssignment: Sendable, Hashable {
    public var adamID: String
    public var pricingParam: String
    public var clientUserID: String
    public var serialNumber: String

    public init(adamID: String, pricingParam: String, clientUserID: String, serialNumber: String) {
        self.adamID = adamID
        self.pricingParam = pricingParam
        self.clientUserID = clientUserID
        self.serialNumber = serialNumber
    }
}

/// What a sync found, written on the token when it ends.
public struct SyncSummary: Sendable, Hashable, Codable {
    public var apps = 0
    public var books = 0
    public var skippedAssets = 0
    public var users = 0
    public var foreignUsers = 0
    public var assignments: Int64 = 0
    public var foreignAssignments: Int64 = 0
    public var fullSync = false

    public init() {}
}

/// The writes of a sync, each in one transaction in the tenant's schema. Every write is idempotent (upserts keyed by
/// Apple's ids), so a sync that dies half-way and runs again leaves no duplicates.
public struct SyncStore: Sendable {
    let storage: Storage

    public init(storage: Storage) {
        self.storage = storage
    }

    /// Replaces the token's assets and skipped assets with what Apple listed (R8, R9, R11, R12). Assets Apple no longer
    /// lists are removed.
    public func applyAssets(
        tenantID: UUID,
        tokenID: UUID,
        assets: [SyncedAsset],
        skipped: [SkippedAssetRecord],
        at time: Date
    ) async throws {
        try await self.storage.withTenant(tenantID) { transaction in
            try await Self.requireToken(tokenID, transaction)
            let ids = assets.map { _ in UUID() }
            try await transaction.query(
                """
                INSERT INTO assets (id, token_id, adam_id, pricing_param, product_type, name, bundle_id, artwork_url,
                                    platforms, device_assignable, revocable, unlimited, total_count, assigned_count,
                                    available_count, retired_count, synced_at)
                SELECT a.id, \(tokenID), a.adam_id, a.pricing_param, a.product_type, a.name, a.bundle_id, a.artwork_url,
                       CASE WHEN a.platforms = '' THEN '{}'::text[] ELSE string_to_array(a.platforms, ',') END,
                       a.device_assignable, a.revocable, a.unlimited, a.total_count, a.assigned_count,
                       a.available_count, a.retired_count, \(time)
                FROM unnest(\(ids)::uuid[], \(assets.map(\.adamID))::text[], \(assets.map(\.pricingParam))::text[],
                            \(assets.map(\.productType))::text[], \(assets.map(\.name))::text[],
                            \(assets.map(\.bundleID))::text[], \(assets.map(\.artworkURL))::text[],
                            \(assets.map { $0.platforms.joined(separator: ",") })::text[],
                            \(assets.map(\.deviceAssignable))::boolean[], \(assets.map(\.revocable))::boolean[],
                            \(assets.map(\.unlimited))::boolean[], \(assets.map(\.totalCount))::integer[],
                            \(assets.map(\.assignedCount))::integer[], \(assets.map(\.availableCount))::integer[],
                            \(assets.map(\.retiredCount))::integer[])
                     AS a(id, adam_id, pricing_param, product_type, name, bundle_id, artwork_url, platforms,
                          device_assignable, revocable, unlimited, total_count, assigned_count, available_count,
                          retired_count)
                ON CONFLICT (token_id, adam_id, pricing_param) DO UPDATE SET
                    product_type = excluded.product_type, name = excluded.name, bundle_id = excluded.bundle_id,
                    artwork_url = excluded.artwork_url, platforms = excluded.platforms,
                    device_assignable = excluded.device_assignable, revocable = excluded.revocable,
                    unlimited = excluded.unlimited, total_count = excluded.total_count,
                    assigned_count = excluded.assigned_count, available_count = excluded.available_count,
                    retired_count = excluded.retired_count, synced_at = excluded.synced_at
                """
            )
            try await transaction.query(
                "DELETE FROM assets WHERE token_id = \(tokenID) AND synced_at <> \(time)"
            )
            try await transaction.query("DELETE FROM skipped_assets WHERE token_id = \(tokenID)")
            if !skipped.isEmpty {
                try await transaction.query(
                    """
                    INSERT INTO skipped_assets (token_id, adam_id, pricing_param, product_type, reason, total_count, seen_at)
                    SELECT \(tokenID), s.adam_id, s.pricing_param, s.product_type, s.reason, s.total_count, \(time)
                    FROM unnest(\(skipped.map(\.adamID))::text[], \(skipped.map(\.pricingParam))::text[],
                                \(skipped.map(\.productType))::text[], \(skipped.map(\.reason))::text[],
                                \(skipped.map(\.totalCount))::integer[])
                         AS s(adam_id, pricing_param, product_type, reason, total_count)
                    ON CONFLICT DO NOTHING
                    """
                )
            }
        }
    }

    /// R10: updates the users this service created from what Apple reports; every other user is only counted.
    /// Returns (this service's users seen, foreign users seen).
    public func applyUsers(tenantID: UUID, tokenID: UUID, users: [SyncedUser], at time: Date) async throws -> (
        ours: Int, foreign: Int
    ) {
        try await self.storage.withTenant(tenantID) { transaction in
            try await Self.requireToken(tokenID, transaction)
            let updated = try await transaction.query(
                """
                UPDATE vpp_users u SET email = s.email, status = s.status, id_hash = s.id_hash,
                    invite_code = s.invite_code, invitation_url = s.invitation_url, apple_seen_at = \(time)
                FROM unnest(\(users.map(\.clientUserID))::text[], \(users.map(\.email))::text[],
                            \(users.map(\.status))::text[], \(users.map(\.idHash))::text[],
                            \(users.map(\.inviteCode))::text[], \(users.map(\.invitationURL))::text[])
                     AS s(client_user_id, email, status, id_hash, invite_code, invitation_url)
                WHERE u.token_id = \(tokenID) AND u.client_user_id = s.client_user_id
                """
            )
            let ours = updated.affectedRows ?? 0
            return (ours, users.count - ours)
        }
    }

    /// Issue 18: users as a notification reports them (USER_ASSOCIATED, USER_MANAGEMENT), for this service's users
    /// only. Notifications may arrive out of order, so a user Associated stays Associated when an older "Registered"
    /// comes late (only retirement moves a user on from Associated). Fields a notification leaves empty keep their
    /// value. Returns how many of this service's users changed.
    @discardableResult
    public func applyNotifiedUsers(tenantID: UUID, tokenID: UUID, users: [SyncedUser], at time: Date) async throws
        -> Int
    {
        guard !users.isEmpty else { return 0 }
        return try await self.storage.withTenant(tenantID) { transaction in
            try await Self.requireToken(tokenID, transaction)
            return try await transaction.query(
                """
                UPDATE vpp_users u SET
                    email = CASE WHEN s.email = '' THEN u.email ELSE s.email END,
                    status = s.status,
                    id_hash = CASE WHEN s.id_hash = '' THEN u.id_hash ELSE s.id_hash END,
                    invite_code = CASE WHEN s.status = 'Registered' AND s.invite_code <> '' THEN s.invite_code
                                       WHEN s.status = 'Registered' THEN u.invite_code ELSE '' END,
                    invitation_url = CASE WHEN s.status = 'Registered' AND s.invitation_url <> '' THEN s.invitation_url
                                          WHEN s.status = 'Registered' THEN u.invitation_url ELSE '' END,
                    apple_seen_at = \(time)
                FROM unnest(\(users.map(\.clientUserID))::text[], \(users.map(\.email))::text[],
                            \(users.map(\.status))::text[], \(users.map(\.idHash))::text[],
                            \(users.map(\.inviteCode))::text[], \(users.map(\.invitationURL))::text[])
                     AS s(client_user_id, email, status, id_hash, invite_code, invitation_url)
                WHERE u.token_id = \(tokenID) AND u.client_user_id = s.client_user_id
                  AND NOT (u.status = 'Associated' AND s.status = 'Registered')
                """
            ).affectedRows ?? 0
        }
    }

    /// Issue 18: one asset's counts as Apple reports them now (after an ASSET_COUNT notification). Returns false when
    /// the token has no such asset (a new purchase: a sync brings it in with its metadata).
    public func applyAssetCounts(tenantID: UUID, tokenID: UUID, _ asset: SyncedAsset, at time: Date) async throws
        -> Bool
    {
        try await self.storage.withTenant(tenantID) { transaction in
            try await Self.requireToken(tokenID, transaction)
            let updated = try await transaction.query(
                """
                UPDATE assets SET total_count = \(asset.totalCount), assigned_count = \(asset.assignedCount),
                    available_count = \(asset.availableCount), retired_count = \(asset.retiredCount),
                    unlimited = \(asset.unlimited)
                WHERE token_id = \(tokenID) AND adam_id = \(asset.adamID) AND pricing_param = \(asset.pricingParam)
                RETURNING id
                """
            )
            return !updated.isEmpty
        }
    }

    /// Reconciles Apple's assignments with the licenses this service holds (R10): ours are confirmed; new ones of our
    /// users are taken in; every other one is only counted as foreign. On a full read, ours that Apple no longer lists
    /// are marked missing. Returns (ours confirmed or taken in, foreign).
    public func applyAssignments(
        tenantID: UUID,
        tokenID: UUID,
        assignments: [SyncedAssignment],
        full: Bool,
        at time: Date
    ) async throws -> (ours: Int64, foreign: Int64) {
        try await self.storage.withTenant(tenantID) { transaction in
            try await Self.requireToken(tokenID, transaction)
            try await transaction.simpleQuery(
                """
                CREATE TEMP TABLE sync_seen (
                    adam_id text NOT NULL, pricing_param text NOT NULL,
                    client_user_id text NOT NULL, serial_number text NOT NULL
                ) ON COMMIT DROP
                """
            )
            _ = try await transaction.copyIn(
                table: "sync_seen",
                columns: ["adam_id", "pricing_param", "client_user_id", "serial_number"],
                rows: assignments.map { [$0.adamID, $0.pricingParam, $0.clientUserID, $0.serialNumber] }
            )
            // Ours, known: confirmed.
            let confirmed =
                try await transaction.query(
                    """
                    UPDATE apple_assignments a SET confirmed_at = \(time), missing_since = NULL
                    FROM sync_seen s
                    WHERE a.token_id = \(tokenID) AND a.adam_id = s.adam_id AND a.pricing_param = s.pricing_param
                      AND a.client_user_id = s.client_user_id AND a.serial_number = s.serial_number
                    """
                ).affectedRows ?? 0
            // Licenses our users took themselves (e.g. an Available app, R21): ours too.
            let takenIn =
                try await transaction.query(
                    """
                    INSERT INTO apple_assignments (token_id, adam_id, pricing_param, client_user_id, serial_number, origin,
                                                   confirmed_at)
                    SELECT DISTINCT \(tokenID), s.adam_id, s.pricing_param, s.client_user_id, '', 'user', \(time)::timestamptz
                    FROM sync_seen s JOIN vpp_users u ON u.token_id = \(tokenID) AND u.client_user_id = s.client_user_id
                    WHERE s.client_user_id <> ''
                    ON CONFLICT DO NOTHING
                    """
                ).affectedRows ?? 0
            if full {
                try await transaction.query(
                    """
                    UPDATE apple_assignments SET missing_since = coalesce(missing_since, \(time))
                    WHERE token_id = \(tokenID) AND (confirmed_at IS NULL OR confirmed_at <> \(time))
                    """
                )
            }
            if full {
                // Seats held at Apple that the ledger does not hold (another MDM, Apple Business Manager, our
                // users' own): the ledger cannot use them (R15). Counted from this read's own list of assignments,
                // so an association or disassociation the push has in flight meanwhile is still known as ours: a
                // listed seat is ours when the ledger holds a seat for that target, or a disassociation of it waits in
                // the outbox (a deleted device's seat).
                try await transaction.query(
                    """
                    WITH ours AS (
                        SELECT s.adam_id, s.pricing_param, l.serial_number, ''::text AS client_user_id
                        FROM licenses l JOIN assets s ON s.id = l.asset_id
                        WHERE s.token_id = \(tokenID) AND l.target_kind = 'device'
                          AND l.state IN ('reserved', 'granted', 'removing', 'releasing')
                        UNION
                        SELECT s.adam_id, s.pricing_param, '', coalesce(v.client_user_id, l.user_id::text)
                        FROM licenses l JOIN assets s ON s.id = l.asset_id
                        LEFT JOIN vpp_users v ON v.token_id = s.token_id AND v.user_id = l.user_id
                        WHERE s.token_id = \(tokenID) AND l.target_kind = 'user'
                          AND l.state IN ('reserved', 'granted', 'removing', 'releasing')
                        UNION
                        SELECT adam_id, pricing_param, serial_number, client_user_id FROM apple_outbox
                        WHERE token_id = \(tokenID) AND operation = 'disassociate'
                    ), elsewhere AS (
                        SELECT ss.adam_id, ss.pricing_param, count(*) AS seats FROM sync_seen ss
                        WHERE NOT EXISTS (
                            SELECT 1 FROM ours o
                            WHERE o.adam_id = ss.adam_id AND o.pricing_param = ss.pricing_param
                              AND o.serial_number = ss.serial_number AND o.client_user_id = ss.client_user_id)
                        GROUP BY 1, 2
                    )
                    UPDATE assets a SET foreign_assigned = coalesce(e.seats, 0)
                    FROM assets a2 LEFT JOIN elsewhere e ON e.adam_id = a2.adam_id AND e.pricing_param = a2.pricing_param
                    WHERE a.id = a2.id AND a2.token_id = \(tokenID) AND NOT a2.unlimited
                    """
                )
            }
            let ours = Int64(confirmed + takenIn)
            return (ours, Int64(assignments.count) - ours)
        }
    }

    /// Records that a sync started (R6: last sync).
    public func recordStart(tenantID: UUID, tokenID: UUID, jobID: UUID, at time: Date) async throws {
        _ = try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                UPDATE tokens SET last_sync_job_id = \(jobID), last_sync_started_at = \(time), updated_at = clock_timestamp()
                WHERE id = \(tokenID)
                """
            )
        }
    }

    /// Records a finished sync on its token: the result, the counts (when it succeeded) and the versions for the next
    /// incremental read. `summary` nil keeps the counts (a failed sync).
    public func recordFinish(
        tenantID: UUID,
        tokenID: UUID,
        jobID: UUID,
        result: String,
        error: String,
        summary: SyncSummary?,
        versions: TokenSyncVersions?,
        at time: Date
    ) async throws {
        _ = try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                UPDATE tokens SET last_sync_job_id = \(jobID), last_sync_finished_at = \(time),
                    last_sync_result = \(result), last_sync_error = \(error),
                    app_count = coalesce(\(summary?.apps), app_count),
                    book_count = coalesce(\(summary?.books), book_count),
                    skipped_asset_count = coalesce(\(summary?.skippedAssets), skipped_asset_count),
                    user_count = coalesce(\(summary?.users), user_count),
                    foreign_user_count = coalesce(\(summary?.foreignUsers), foreign_user_count),
                    assignment_count = coalesce(\(summary?.assignments), assignment_count),
                    foreign_assignment_count = coalesce(\(summary?.foreignAssignments), foreign_assignment_count),
                    assets_version = CASE WHEN \(versions != nil) THEN \(versions?.assets) ELSE assets_version END,
                    users_version = CASE WHEN \(versions != nil) THEN \(versions?.users) ELSE users_version END,
                    assignments_version = CASE WHEN \(versions != nil) THEN \(versions?.assignments) ELSE assignments_version END,
                    last_full_sync_at = CASE WHEN \(summary?.fullSync ?? false) THEN \(time) ELSE last_full_sync_at END,
                    updated_at = clock_timestamp()
                WHERE id = \(tokenID)
                """
            )
        }
    }

    /// The counts of this service's users and licenses under a token (for incremental syncs, which see only changes).
    public func ownCounts(tenantID: UUID, tokenID: UUID) async throws -> (users: Int, assignments: Int64) {
        try await self.storage.withTenant(tenantID) { transaction in
            let row = try await transaction.query(
                """
                SELECT (SELECT count(*) FROM vpp_users WHERE token_id = \(tokenID))::bigint,
                       (SELECT count(*) FROM apple_assignments WHERE token_id = \(tokenID) AND missing_since IS NULL)::bigint
                """
            ).single()
            return (try row.decode(Int.self, at: 0), try row.decode(Int64.self, at: 1))
        }
    }

    /// Records a VPP user this service created at Apple (R10: only these are synced). Used when users are created.
    public func recordCreatedUser(tenantID: UUID, tokenID: UUID, clientUserID: String, email: String) async throws {
        try await self.storage.withTenant(tenantID) { transaction in
            try await Self.requireToken(tokenID, transaction)
            try await transaction.query(
                """
                INSERT INTO vpp_users (token_id, client_user_id, email) VALUES (\(tokenID), \(clientUserID), \(email))
                ON CONFLICT DO NOTHING
                """
            )
        }
    }

    /// Records licenses this service asked Apple for (device or user), so the sync knows them as its own.
    public func recordServiceAssignments(tenantID: UUID, tokenID: UUID, _ assignments: [SyncedAssignment]) async throws
    {
        try await self.storage.withTenant(tenantID) { transaction in
            try await Self.requireToken(tokenID, transaction)
            _ = try await transaction.copyIn(
                table: "apple_assignments",
                columns: ["token_id", "adam_id", "pricing_param", "client_user_id", "serial_number", "origin"],
                rows: assignments.map {
                    [tokenID, $0.adamID, $0.pricingParam, $0.clientUserID, $0.serialNumber, "service"]
                }
            )
        }
    }

    static func requireToken(_ tokenID: UUID, _ transaction: PostgresTransaction) async throws {
        // FOR SHARE: a sync writing while the token is deleted waits, then finds it gone.
        let rows = try await transaction.query("SELECT 1 FROM tokens WHERE id = \(tokenID) FOR SHARE")
        guard !rows.isEmpty else { throw TokenStore.notFound(tokenID) }
    }
}
