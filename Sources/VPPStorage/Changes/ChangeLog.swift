public import Foundation
import VPPPostgres

/// What a change-log entry is about (issue 19). The raw values are the `changes.kind` column's; docs/change-feed.md
/// describes each one and what its entry carries.
public enum ChangeKind: String, CaseIterable, Sendable, Hashable, Codable {
    /// A target's license of one asset changed: the ledger moved it, the device reported an install, the user
    /// accepted Apple's invitation (R15-R23), or the entry ended.
    case license
    /// An assignment was made, changed or deleted (R13, R14).
    case assignment
    /// A token was added, changed (status, expiry, names) or deleted (R1-R6).
    case token
    /// A sync of a token finished (R7).
    case sync
    /// An asset's license counts changed (a license handed out or freed, a purchase, a refund), or it came or went.
    case counts
    /// Derived: a token expires in 30, 14 or 7 days.
    case tokenExpiring = "token_expiring"
    /// Derived: another MDM claimed a token (R4).
    case tokenClaimedElsewhere = "token_claimed_elsewhere"
    /// Derived: an asset has targets waiting and no license left (R15).
    case licensesExhausted = "licenses_exhausted"
    /// Derived: waiters of an asset got licenses (R15).
    case waitersServed = "waiters_served"
    /// Derived: seats taken back were given back at Apple (R17).
    case reclaimDone = "reclaim_done"
    /// A webhook endpoint was disabled after failing for too long.
    case webhookDisabled = "webhook_disabled"
}

/// One entry of a tenant's change log. `data` holds the entry's facts (the keys docs/change-feed.md lists per kind);
/// the service turns them into the proto's `Change`.
public struct ChangeRecord: Sendable, Hashable {
    /// The tenant's sequence number: consecutive, in commit order.
    public var sequence: Int64
    public var kind: ChangeKind
    public var tokenID: UUID?
    public var assetID: UUID?
    public var data: ChangeData
    public var at: Date

    public init(sequence: Int64, kind: ChangeKind, tokenID: UUID?, assetID: UUID?, data: ChangeData, at: Date) {
        self.sequence = sequence
        self.kind = kind
        self.tokenID = tokenID
        self.assetID = assetID
        self.data = data
        self.at = at
    }
}

/// The facts of a change, as the triggers of migration 7 write them (snake_case JSON). Every field is optional: each
/// kind fills its own.
public struct ChangeData: Sendable, Hashable, Codable {
    // The asset (license, assignment, counts and the derived asset kinds).
    public var adamID: String?
    public var pricingParam: String?
    public var productType: String?
    // license
    public var licenseID: UUID?
    public var targetKind: String?
    public var deviceID: UUID?
    public var userID: UUID?
    public var serialNumber: String?
    public var userExternalID: String?
    public var state: String?
    public var installState: String?
    public var requested: Bool?
    public var invitationPending: Bool?
    public var reason: String?
    public var installReason: String?
    public var ended: Bool?
    // assignment
    public var assignmentID: UUID?
    public var groupID: UUID?
    public var action: String?
    public var licenseType: String?
    public var deleted: Bool?
    // token (and token_expiring, token_claimed_elsewhere)
    public var displayName: String?
    public var organizationName: String?
    public var locationName: String?
    public var status: String?
    public var statusReason: String?
    public var otherMDMName: String?
    public var expiresAt: Double?
    public var created: Bool?
    public var days: Int?
    // sync
    public var jobID: UUID?
    public var result: String?
    public var error: String?
    public var finishedAt: Double?
    public var apps: Int?
    public var books: Int?
    public var users: Int?
    public var assignments: Int64?
    // counts (and licenses_exhausted)
    public var total: Int?
    public var unlimited: Bool?
    public var heldElsewhere: Int?
    public var held: Int?
    public var reserved: Int?
    public var waiting: Int?
    public var removed: Bool?
    // waiters_served, reclaim_done
    public var count: Int?
    // webhook_disabled
    public var webhookID: UUID?
    public var url: String?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case adamID = "adam_id"
        case pricingParam = "pricing_param"
        case productType = "product_type"
        case licenseID = "license_id"
        case targetKind = "target_kind"
        case deviceID = "device_id"
        case userID = "user_id"
        case serialNumber = "serial_number"
        case userExternalID = "user_external_id"
        case state
        case installState = "install_state"
        case requested
        case invitationPending = "invitation_pending"
        case reason
        case installReason = "install_reason"
        case ended
        case assignmentID = "assignment_id"
        case groupID = "group_id"
        case action
        case licenseType = "license_type"
        case deleted
        case displayName = "display_name"
        case organizationName = "organization_name"
        case locationName = "location_name"
        case status
        case statusReason = "status_reason"
        case otherMDMName = "other_mdm_name"
        case expiresAt = "expires_at"
        case created
        case days
        case jobID = "job_id"
        case result
        case error
        case finishedAt = "finished_at"
        case apps
        case books
        case users
        case assignments
        case total
        case unlimited
        case heldElsewhere = "held_elsewhere"
        case held
        case reserved
        case waiting
        case removed
        case count
        case webhookID = "webhook_id"
        case url
    }
}

/// A cursor below the oldest entry the log still holds: the reader missed entries that were pruned.
public struct ChangeCursorExpired: Error, Sendable, Hashable, CustomStringConvertible {
    public var cursor: Int64
    /// The oldest cursor still valid: reading after it sees every entry still held.
    public var oldest: Int64

    public init(cursor: Int64, oldest: Int64) {
        self.cursor = cursor
        self.oldest = oldest
    }

    public var description: String {
        "Cursor \(self.cursor) is older than the change log's retention: entries up to \(self.oldest) were pruned. "
            + "Resynchronise (list what you need) and resume after cursor \(self.oldest), the oldest still held."
    }
}

/// Where a tenant's log stands: the last sequence number committed and the highest pruned.
public struct ChangeLogBounds: Sendable, Hashable {
    public var head: Int64
    public var prunedThrough: Int64
}

/// One read of the log: the entries found, and the cursor to continue after (past entries filtered out, so a filter
/// that matches little still moves on).
public struct ChangePage: Sendable, Hashable {
    public var changes: [ChangeRecord]
    public var next: Int64
    public var head: Int64
}

/// Reads and prunes a tenant's change log (migration 7 writes it). Readers page by sequence number: everything after a
/// cursor, in order; a reader never sees a gap, because numbers are given in commit order.
public struct ChangeLog: Sendable {
    let storage: Storage

    /// The most entries one read scans, whatever the filter: a read after an old cursor with a filter that matches
    /// little stops there and returns where it got to.
    public static let maxScan: Int64 = 10_000
    public static let maxPageSize = 1_000

    /// NOTIFY channel: a transaction that wrote changes announces its tenant's schema name when it commits.
    public static let channel = "vpp_changes"

    public init(storage: Storage) {
        self.storage = storage
    }

    public func bounds(tenantID: UUID) async throws -> ChangeLogBounds {
        try await self.storage.withTenant(tenantID) { transaction in
            try await Self.bounds(transaction)
        }
    }

    static func bounds(_ transaction: PostgresTransaction) async throws -> ChangeLogBounds {
        let row = try await transaction.query("SELECT last_seq, pruned_through FROM change_counter").single()
        return ChangeLogBounds(
            head: try row.decode(Int64.self, at: 0),
            prunedThrough: try row.decode(Int64.self, at: 1)
        )
    }

    /// Up to `limit` entries after `cursor` whose kind is in `kinds` (every kind when empty). Throws
    /// `ChangeCursorExpired` for a cursor below the pruned ones, `invalidArgument` for one beyond the head.
    public func read(tenantID: UUID, after cursor: Int64, kinds: Set<ChangeKind>, limit: Int) async throws
        -> ChangePage
    {
        let limit = max(1, min(limit, Self.maxPageSize))
        return try await self.storage.withTenant(tenantID) { transaction in
            let bounds = try await Self.bounds(transaction)
            guard cursor >= bounds.prunedThrough else {
                throw ChangeCursorExpired(cursor: cursor, oldest: bounds.prunedThrough)
            }
            guard cursor <= bounds.head else {
                throw StorageError.invalidArgument(
                    "Cursor \(cursor) is beyond the newest change (\(bounds.head)); a cursor comes from a change or from the head of the log.",
                    field: "cursor"
                )
            }
            let end = min(bounds.head, cursor + Self.maxScan)
            let filter = kinds.count == ChangeKind.allCases.count ? [] : kinds.map(\.rawValue).sorted()
            let rows = try await transaction.query(
                """
                SELECT seq, kind, token_id, asset_id, data::text, at FROM changes
                WHERE seq > \(cursor) AND seq <= \(end)
                  AND (cardinality(\(filter)::text[]) = 0 OR kind = ANY(\(filter)::text[]))
                ORDER BY seq LIMIT \(limit)
                """
            )
            let changes = try rows.map(Self.decode)
            // A full page continues after its last entry; a short one has seen everything up to `end`.
            let next = changes.count == limit ? changes.last!.sequence : end
            return ChangePage(changes: changes, next: next, head: bounds.head)
        }
    }

    static func decode(_ row: PostgresRow) throws -> ChangeRecord {
        let kind = try row.decode(String.self, at: 1)
        guard let parsed = ChangeKind(rawValue: kind) else {
            throw StorageError.internalInconsistency("A change has the unknown kind \(kind).")
        }
        let json = try row.decode(String.self, at: 4)
        let data: ChangeData
        do {
            data = try JSONDecoder().decode(ChangeData.self, from: Data(json.utf8))
        } catch {
            throw StorageError.internalInconsistency("A change's data did not decode: \(error)")
        }
        return ChangeRecord(
            sequence: try row.decode(Int64.self, at: 0),
            kind: parsed,
            tokenID: try row.decode(UUID?.self, at: 2),
            assetID: try row.decode(UUID?.self, at: 3),
            data: data,
            at: try row.decode(Date.self, at: 5)
        )
    }

    /// Drops the entries older than `cutoff` and remembers the highest sequence number dropped, so a reader whose
    /// cursor is below it is told (never silently skipped). Returns how many went.
    @discardableResult
    public func prune(tenantID: UUID, olderThan cutoff: Date) async throws -> Int {
        try await self.storage.inTenantScope(tenantID) { transaction in
            let rows = try await transaction.query(
                """
                WITH gone AS (
                    DELETE FROM changes
                    WHERE seq <= (SELECT max(seq) FROM changes WHERE at < \(cutoff) AND seq IS NOT NULL)
                    RETURNING seq
                ), raised AS (
                    UPDATE change_counter SET pruned_through = greatest(pruned_through, (SELECT max(seq) FROM gone))
                    WHERE EXISTS (SELECT 1 FROM gone)
                    RETURNING 1
                )
                SELECT count(*)::bigint FROM gone
                """
            )
            return try rows.single().decode(Int.self, at: 0)
        }
    }

    /// Derived TOKEN_EXPIRING entries: each active token whose expiry is 30, 14 or 7 days away (or less) gets the
    /// warning once per threshold (the trigger writes the entry; a renewal clears it). Returns the tokens warned.
    @discardableResult
    public func warnExpiringTokens(tenantID: UUID, now: Date) async throws -> Int {
        try await self.storage.inTenantScope(tenantID) { transaction in
            let rows = try await transaction.query(
                """
                WITH due AS (
                    SELECT id, CASE WHEN expires_at <= \(now) + interval '7 days' THEN 7
                                    WHEN expires_at <= \(now) + interval '14 days' THEN 14
                                    ELSE 30 END AS days
                    FROM tokens
                    WHERE status = 'active' AND expires_at > \(now) AND expires_at <= \(now) + interval '30 days'
                )
                UPDATE tokens t SET expiry_warning_days = due.days
                FROM due WHERE t.id = due.id AND due.days < coalesce(t.expiry_warning_days, 1000)
                RETURNING t.id
                """
            )
            return rows.count
        }
    }
}

extension Storage {
    public var changeLog: ChangeLog { ChangeLog(storage: self) }
}
