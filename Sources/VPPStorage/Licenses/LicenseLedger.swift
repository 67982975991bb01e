public import Foundation
public import Logging
public import VPPLicensing
import VPPPostgres

/// An assignment of an app or book to a group (R13).
public struct AssignmentRecord: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable {
        case required
        case available
        case uninstall
    }

    public enum LicenseType: String, Sendable, Hashable {
        case user
        case device
    }

    public var id: UUID
    public var assetID: UUID
    public var tokenID: UUID
    public var groupID: UUID
    public var action: Action
    public var licenseType: LicenseType
    public var createdAt: Date
    public var updatedAt: Date
    /// How the licenses of the assignment's asset stand for the group's targets right now.
    public var targets = 0
    public var granted = 0
    public var waiting = 0
    public var installed = 0
    public var failed = 0
}

/// Where one target stands with one asset (the ledger row).
public struct LicenseRecord: Sendable, Hashable {
    public var id: UUID
    public var assetID: UUID
    public var targetKind: AssignmentRecord.LicenseType
    public var serialNumber: String
    public var userExternalID: String
    public var state: LicenseState
    /// The ledger's own reason (Apple's answer, a policy); `explanation` is what clients are shown.
    public var reason: String
    public var installState: InstallReport
    public var installReason: String
    /// For waiters: 1 is next.
    public var queuePosition: Int
    public var since: Date
    /// R20: a user license whose user has not accepted Apple's VPP invitation yet.
    public var invitationPending = false

    /// The one state every RPC reports for this entry (R23).
    public var targetState: TargetState {
        TargetState.of(self.state, install: self.installState, invitationPending: self.invitationPending)
    }

    /// Why the entry stands where it does and what would change it (R23).
    public var explanation: String {
        self.targetState.reason(
            ledgerState: self.state,
            stored: self.reason,
            installReason: self.installReason,
            queuePosition: self.queuePosition,
            licenseType: self.targetKind.rawValue
        )
    }
}

/// Per-asset counts of the ledger (R15, R23).
public struct LicenseUsageRecord: Sendable, Hashable {
    /// The asset, with the counts every RPC returns (`asset.counts`).
    public var asset: AssetRecord
    /// Entries by the state the RPCs report (`TargetState`); absent states count 0.
    public var byState: [TargetState: Int] = [:]

    public subscript(_ state: TargetState) -> Int { self.byState[state] ?? 0 }
}

/// The license ledger (R15-R22): who should hold a license of which asset, who holds one, who waits, and the changes
/// Apple must be told (the outbox), all in the tenant's schema and changed in one transaction.
///
/// The promise: seats held never exceed what can be used (bought, minus what others hold at Apple). Every change of
/// an asset's seats runs with the asset's row locked (`FOR UPDATE`), so concurrent calls queue on that lock instead of
/// both taking the last seat. Waiters are served in `wait_seq` order when seats free up or more are bought.
public struct LicenseLedger: Sendable {
    let storage: Storage
    let logger: Logger
    /// What happens to a seat whose target no assignment reaches any more (it left the group, the assignment was
    /// deleted, the device or user was deleted).
    public let reclaim: ReclaimPolicy

    public typealias ReclaimPolicy = VPPLicensing.ReclaimPolicy

    public init(storage: Storage, logger: Logger, reclaim: ReclaimPolicy = .immediate) {
        self.storage = storage
        self.logger = logger
        self.reclaim = reclaim
    }

    // MARK: Assignments

    static let assignmentColumns = """
        a.id, a.asset_id, s.token_id, a.group_id, a.action, a.license_type, a.created_at, a.updated_at
        """

    static func decodeAssignment(_ row: PostgresRow) throws -> AssignmentRecord {
        AssignmentRecord(
            id: try row.decode(UUID.self, at: 0),
            assetID: try row.decode(UUID.self, at: 1),
            tokenID: try row.decode(UUID.self, at: 2),
            groupID: try row.decode(UUID.self, at: 3),
            action: AssignmentRecord.Action(rawValue: try row.decode(String.self, at: 4)) ?? .required,
            licenseType: AssignmentRecord.LicenseType(rawValue: try row.decode(String.self, at: 5)) ?? .device,
            createdAt: try row.decode(Date.self, at: 6),
            updatedAt: try row.decode(Date.self, at: 7)
        )
    }

    /// R13, R14: assigns an asset to a group and hands out licenses at once.
    public func createAssignment(
        tenantID: UUID,
        assetID: UUID,
        groupID: UUID,
        action: AssignmentRecord.Action,
        licenseType: AssignmentRecord.LicenseType
    ) async throws -> AssignmentRecord {
        let tenant = try await self.storage.tenants.get(tenantID)
        let id = UUID()
        return try await self.inLedger(tenantID) { transaction in
            let asset = try await Self.lockAsset(assetID, transaction)
            let groups = try await transaction.query("SELECT kind FROM groups WHERE id = \(groupID)")
            guard let groupRow = groups.first else {
                throw StorageError.notFound("No group with id \(groupID.lowercasedText).")
            }
            let groupKind = try groupRow.decode(String.self, at: 0)
            // R13: books only as Required.
            if asset.productType == "Book" && action != .required {
                throw StorageError.invalidArgument(
                    "Books can only be assigned as REQUIRED (R13).",
                    field: "action"
                )
            }
            // R14: device groups only for tenants created after January 2017, or where an operator enabled them.
            if groupKind == "device" && !tenant.deviceGroupAssignmentAllowed {
                throw StorageError.failedPrecondition(
                    "Assigning to device groups is available only to organisations created after January 2017 (on or after 2017-02-01 UTC), unless the platform operator enables it (R14).",
                    reason: "DEVICE_GROUPS_NOT_ALLOWED"
                )
            }
            if licenseType == .device && !asset.deviceAssignable {
                throw StorageError.failedPrecondition(
                    "This \(asset.productType == "Book" ? "book" : "app") cannot be licensed to devices (Apple marks it not device-assignable); use user licensing.",
                    reason: "NOT_DEVICE_ASSIGNABLE"
                )
            }
            let inserted = try await transaction.query(
                """
                INSERT INTO assignments (id, asset_id, group_id, action, license_type)
                VALUES (\(id), \(assetID), \(groupID), \(action.rawValue), \(licenseType.rawValue))
                ON CONFLICT (asset_id, group_id) DO NOTHING
                RETURNING id
                """
            )
            guard !inserted.isEmpty else {
                throw StorageError.alreadyExists(
                    "This app or book is already assigned to this group; change that assignment's action instead."
                )
            }
            try await Self.reconcile(asset: asset, reclaim: self.reclaim, transaction)
            return try await Self.assignment(id, transaction)
        }
    }

    /// R17: changes the action (e.g. to UNINSTALL: licenses are freed once the app is reported removed).
    public func updateAssignment(tenantID: UUID, _ id: UUID, action: AssignmentRecord.Action) async throws
        -> AssignmentRecord
    {
        try await self.inLedger(tenantID) { transaction in
            let assetID = try await Self.assignmentAsset(id, transaction)
            let asset = try await Self.lockAsset(assetID, transaction)
            if asset.productType == "Book" && action != .required {
                throw StorageError.invalidArgument("Books can only be assigned as REQUIRED (R13).", field: "action")
            }
            try await transaction.query(
                "UPDATE assignments SET action = \(action.rawValue), updated_at = clock_timestamp() WHERE id = \(id)"
            )
            try await Self.reconcile(asset: asset, reclaim: self.reclaim, transaction)
            return try await Self.assignment(id, transaction)
        }
    }

    /// Removes the assignment; licenses no other assignment needs are taken back at once (the reclaim policy, see
    /// docs/licenses.md). Returns (released now, left until removal is reported).
    public func deleteAssignment(tenantID: UUID, _ id: UUID) async throws -> (released: Int, pending: Int) {
        try await self.inLedger(tenantID) { transaction in
            let assetID = try await Self.assignmentAsset(id, transaction)
            let asset = try await Self.lockAsset(assetID, transaction)
            try await transaction.query("DELETE FROM assignments WHERE id = \(id)")
            let reclaimed = try await Self.reconcile(asset: asset, reclaim: self.reclaim, transaction)
            return (reclaimed.released, reclaimed.keptUntilRemoval)
        }
    }

    public func getAssignment(tenantID: UUID, _ id: UUID) async throws -> AssignmentRecord {
        try await self.storage.withTenant(tenantID) { transaction in
            try await Self.assignment(id, transaction)
        }
    }

    public func listAssignments(
        tenantID: UUID,
        assetID: UUID?,
        groupID: UUID?,
        pageSize: Int,
        after token: PageToken?
    ) async throws -> (assignments: [AssignmentRecord], next: PageToken?) {
        let cursor = try CreationCursor(token)
        return try await self.storage.withTenant(tenantID) { transaction in
            let rows = try await transaction.query(
                """
                SELECT \(unescaped: Self.assignmentColumns), (extract(epoch FROM a.created_at) * 1000000)::bigint
                FROM assignments a JOIN assets s ON s.id = a.asset_id
                WHERE (\(assetID)::uuid IS NULL OR a.asset_id = \(assetID))
                  AND (\(groupID)::uuid IS NULL OR a.group_id = \(groupID))
                  AND (\(cursor?.id)::uuid IS NULL
                       OR (a.created_at, a.id) > ('epoch'::timestamptz + \(cursor?.micros)::bigint * interval '1 microsecond',
                                                 \(cursor?.id)::uuid))
                ORDER BY a.created_at, a.id
                LIMIT \(pageSize + 1)
                """
            )
            var (items, next) = try CreationCursor.page(
                rows,
                pageSize: pageSize,
                decode: Self.decodeAssignment,
                id: \.id
            )
            for index in items.indices { try await Self.fillCounts(&items[index], transaction) }
            return (items, next)
        }
    }

    // MARK: Following the directory and Apple

    /// Re-derives every assigned asset's targets from the directory (membership changed) and serves waiters.
    public func reconcileAll(tenantID: UUID) async throws {
        // A deleted device's or user's seat was queued for Apple by the delete itself (licenses_release_deleted), in a
        // transaction that flagged nothing: flag every token with rows waiting, so the push sends them.
        try await self.inLedger(tenantID, flagEveryWaitingToken: true) { transaction in
            let assets = try await transaction.query(
                "SELECT DISTINCT asset_id FROM assignments ORDER BY asset_id"
            ).map { try $0.decode(UUID.self, at: 0) }
            for assetID in assets {
                let asset = try await Self.lockAsset(assetID, transaction)
                try await Self.reconcile(asset: asset, reclaim: self.reclaim, transaction)
            }
        }
    }

    /// Serves waiters of every asset of one token (after a sync changed the counts: more bought, fewer used elsewhere).
    /// Returns whether Apple must be told something.
    @discardableResult
    public func allocateToken(tenantID: UUID, tokenID: UUID) async throws -> Bool {
        try await self.inLedger(tenantID) { transaction in
            let assets = try await transaction.query(
                "SELECT DISTINCT l.asset_id FROM licenses l JOIN assets s ON s.id = l.asset_id WHERE s.token_id = \(tokenID) AND l.state = 'waiting' ORDER BY 1"
            ).map { try $0.decode(UUID.self, at: 0) }
            for assetID in assets {
                let asset = try await Self.lockAsset(assetID, transaction)
                try await Self.allocate(asset, transaction)
            }
            return try await transaction.query("SELECT 1 FROM apple_outbox WHERE token_id = \(tokenID) LIMIT 1").count
                > 0
        }
    }

    // MARK: The transaction

    /// A tenant-scoped transaction for ledger changes. Tokens whose outbox gained rows are flagged in the control
    /// registry in the same transaction (after leaving the tenant's role), so the push job cannot miss them.
    func inLedger<Result: Sendable>(
        _ tenantID: UUID,
        flagEveryWaitingToken: Bool = false,
        _ body: (PostgresTransaction) async throws -> Result
    ) async throws -> Result {
        try await self.storage.withTenant(tenantID) { transaction in
            let highWater =
                flagEveryWaitingToken
                ? 0
                : try await transaction.query("SELECT coalesce(max(id), 0)::bigint FROM apple_outbox")
                    .single().decode(Int64.self, at: 0)
            let result = try await body(transaction)
            let tokens = try await transaction.query(
                "SELECT DISTINCT token_id FROM apple_outbox WHERE id > \(highWater)"
            ).map { try $0.decode(UUID.self, at: 0) }
            if !tokens.isEmpty {
                try await transaction.simpleQuery("RESET ROLE; SET LOCAL search_path TO vpp_control")
                try await transaction.query(
                    "UPDATE vpp_control.token_registry SET outbox_pending = true WHERE token_id = ANY(\(tokens)) AND tenant_id = \(tenantID)"
                )
            }
            return result
        }
    }

    // MARK: Ledger internals (inside a tenant transaction)

    struct LockedAsset {
        var id: UUID
        var tokenID: UUID
        var adamID: String
        var pricingParam: String
        var productType: String
        var deviceAssignable: Bool
        var unlimited: Bool
        /// Seats this service may hold in all: bought, minus what others hold at Apple.
        var capacity: Int
    }

    static func lockAsset(_ assetID: UUID, _ transaction: PostgresTransaction) async throws -> LockedAsset {
        let rows = try await transaction.query(
            """
            SELECT id, token_id, adam_id, pricing_param, product_type, device_assignable, unlimited,
                   greatest(0, total_count - foreign_assigned)
            FROM assets WHERE id = \(assetID) FOR UPDATE
            """
        )
        guard let row = rows.first else {
            throw StorageError.notFound("No app or book with id \(assetID.lowercasedText).")
        }
        return LockedAsset(
            id: try row.decode(UUID.self, at: 0),
            tokenID: try row.decode(UUID.self, at: 1),
            adamID: try row.decode(String.self, at: 2),
            pricingParam: try row.decode(String.self, at: 3),
            productType: try row.decode(String.self, at: 4),
            deviceAssignable: try row.decode(Bool.self, at: 5),
            unlimited: try row.decode(Bool.self, at: 6),
            capacity: try row.decode(Int.self, at: 7)
        )
    }

    static let heldStates = LicenseState.seatHolding.map(\.rawValue)

    static func count(_ assetID: UUID, states: [String], _ transaction: PostgresTransaction) async throws -> Int {
        try await transaction.query(
            "SELECT count(*)::bigint FROM licenses WHERE asset_id = \(assetID) AND state = ANY(\(states))"
        ).single().decode(Int.self, at: 0)
    }

    /// Brings the asset's ledger in line with its assignments and the directory, then serves waiters.
    /// Returns what became of the seats of targets no assignment reaches any more: given back now, or kept until the
    /// removal is reported.
    @discardableResult
    static func reconcile(asset: LockedAsset, reclaim: ReclaimPolicy, _ transaction: PostgresTransaction) async throws
        -> (released: Int, keptUntilRemoval: Int)
    {
        // Who should have what: the strongest action over every assignment that reaches the target
        // (0 required, 1 available, 2 uninstall). R18: devices without user affinity are reached only by device
        // targeting, never through a user.
        try await transaction.query(
            """
            CREATE TEMP TABLE IF NOT EXISTS ledger_desired (
                target_kind text NOT NULL, target_id uuid NOT NULL, device_id uuid, user_id uuid, rank integer NOT NULL,
                sort_key text NOT NULL, blocked boolean NOT NULL DEFAULT false
            ) ON COMMIT DROP
            """
        )
        // Indexed, so lookups stay cheap even where the planner's statistics of `licenses` are stale (rows written
        // earlier in this very transaction).
        try await transaction.query(
            "CREATE INDEX IF NOT EXISTS ledger_desired_target_idx ON ledger_desired (target_kind, target_id)"
        )
        try await transaction.query("TRUNCATE ledger_desired")
        try await transaction.query(
            """
            INSERT INTO ledger_desired (target_kind, target_id, device_id, user_id, rank, sort_key)
            SELECT target_kind, coalesce(device_id, user_id), device_id, user_id, min(rank), min(sort_key) FROM (
                SELECT 'device' AS target_kind, d.id AS device_id, NULL::uuid AS user_id,
                       CASE a.action WHEN 'required' THEN 0 WHEN 'available' THEN 1 ELSE 2 END AS rank,
                       d.serial_number AS sort_key
                FROM assignments a
                JOIN groups g ON g.id = a.group_id AND g.kind = 'device'
                JOIN group_devices gd ON gd.group_id = a.group_id
                JOIN devices d ON d.id = gd.device_id
                WHERE a.asset_id = \(asset.id) AND a.license_type = 'device'
                UNION ALL
                SELECT 'device', d.id, NULL::uuid,
                       CASE a.action WHEN 'required' THEN 0 WHEN 'available' THEN 1 ELSE 2 END, d.serial_number
                FROM assignments a
                JOIN groups g ON g.id = a.group_id AND g.kind = 'user'
                JOIN group_users gu ON gu.group_id = a.group_id
                JOIN devices d ON d.owner_user_id = gu.user_id AND d.enrollment = 'user_affiliated'
                WHERE a.asset_id = \(asset.id) AND a.license_type = 'device'
                UNION ALL
                SELECT 'user', NULL::uuid, u.id,
                       CASE a.action WHEN 'required' THEN 0 WHEN 'available' THEN 1 ELSE 2 END, u.external_id
                FROM assignments a
                JOIN groups g ON g.id = a.group_id AND g.kind = 'user'
                JOIN group_users gu ON gu.group_id = a.group_id
                JOIN users u ON u.id = gu.user_id
                WHERE a.asset_id = \(asset.id) AND a.license_type = 'user'
                UNION ALL
                SELECT 'user', NULL::uuid, u.id,
                       CASE a.action WHEN 'required' THEN 0 WHEN 'available' THEN 1 ELSE 2 END, u.external_id
                FROM assignments a
                JOIN groups g ON g.id = a.group_id AND g.kind = 'device'
                JOIN group_devices gd ON gd.group_id = a.group_id
                JOIN devices d ON d.id = gd.device_id AND d.enrollment = 'user_affiliated'
                JOIN users u ON u.id = d.owner_user_id
                WHERE a.asset_id = \(asset.id) AND a.license_type = 'user'
            ) reach
            GROUP BY target_kind, device_id, user_id
            """
        )
        // R21: a target that asked for an AVAILABLE app (RequestApp) wants it as if it were REQUIRED, as long as an
        // AVAILABLE assignment still reaches it: it keeps its place in line, or its seat.
        try await transaction.query(
            """
            UPDATE ledger_desired d SET rank = 0 FROM licenses l
            WHERE d.rank = 1 AND l.asset_id = \(asset.id) AND l.requested
              AND l.target_kind = d.target_kind AND l.target_id = d.target_id
            """
        )
        // R20: user licensing cannot work where a policy disables the App Store app.
        try await transaction.query(
            """
            UPDATE ledger_desired d SET blocked = true FROM users u
            WHERE d.target_kind = 'user' AND u.id = d.user_id AND u.app_store_disabled
            """
        )
        // Fresh statistics, so the joins below hash instead of looping over thousands of targets.
        try await transaction.simpleQuery("ANALYZE ledger_desired")
        let sql = LedgerSQL(reclaim: reclaim)

        // Entries whose target's intent changed: the machine's transition for each (state, intent, blocked). A seat
        // wanted again before its removal is confirmed at Apple once more (an association Apple holds counts as done).
        let update = sql.intentUpdate
        try await transaction.query(
            """
            WITH moved AS (
                UPDATE licenses l SET
                    state = \(unescaped: update.state),
                    wait_seq = \(unescaped: update.waitSeq),
                    reason = '', since = clock_timestamp(), updated_at = clock_timestamp()
                FROM ledger_desired d
                WHERE l.asset_id = \(asset.id) AND l.target_kind = d.target_kind AND l.target_id = d.target_id
                  AND \(unescaped: update.moves)
                RETURNING l.id, l.asset_id, l.serial_number, l.user_id, \(unescaped: update.associate) AS associate
            ), again AS (
                -- Always asked again, even while an earlier association is in flight: Apple answers the second
                -- "already assigned", which confirms it as well.
                SELECT * FROM moved m WHERE m.associate
            )
            \(unescaped: Self.outboxInsert("associate", from: "again"))
            """
        )
        // R21: an UNINSTALL ends a request; the entry is an ordinary offer again once AVAILABLE (found by the soak).
        try await transaction.query(
            "UPDATE licenses SET requested = false WHERE asset_id = \(asset.id) AND requested AND state IN ('removing', 'releasing')"
        )
        try await transaction.query(
            """
            DELETE FROM licenses l USING ledger_desired d
            WHERE l.asset_id = \(asset.id) AND l.target_kind = d.target_kind AND l.target_id = d.target_id
              AND \(unescaped: sql.intentDelete)
            """
        )

        // Targets reached for the first time: the machine's first state; new waiters join the line (their places
        // next), and the line is served below (R15).
        try await transaction.query(
            """
            INSERT INTO licenses (id, asset_id, target_kind, device_id, user_id, serial_number, state, wait_seq, reason)
            SELECT gen_random_uuid(), \(asset.id), n.target_kind, n.device_id, n.user_id,
                   CASE WHEN n.target_kind = 'device' THEN n.sort_key ELSE '' END,
                   n.state,
                   NULL,
                   CASE WHEN n.state = 'not_applicable'
                        THEN 'A policy disables the App Store app for this user, so user licensing cannot work: allow the App Store app or use device licensing (R20).'
                        ELSE '' END
            FROM (
                SELECT d.*, \(unescaped: sql.initialState) AS state
                FROM ledger_desired d
                WHERE NOT EXISTS (
                    SELECT 1 FROM licenses l
                    WHERE l.asset_id = \(asset.id) AND l.target_kind = d.target_kind AND l.target_id = d.target_id
                )
            ) n
            WHERE n.state IS NOT NULL
            ORDER BY n.sort_key, n.target_id
            """
        )
        // Entries that joined the line just now (moved or new) have no place yet: they take theirs behind everyone
        // already waiting, all together in a stable order, by key (R15).
        try await transaction.query(
            """
            UPDATE licenses l SET wait_seq = o.seq
            FROM (
                SELECT ordered.id, nextval('licenses_wait_seq') AS seq FROM (
                    SELECT l2.id FROM licenses l2
                    JOIN ledger_desired d ON d.target_kind = l2.target_kind AND d.target_id = l2.target_id
                    WHERE l2.asset_id = \(asset.id) AND l2.state = 'waiting' AND l2.wait_seq IS NULL
                    ORDER BY d.sort_key, d.target_id
                ) ordered
            ) o
            WHERE l.id = o.id
            """
        )

        // Targets no assignment reaches any more: entries without a seat go; seats are given back at once or kept
        // until the removal is reported, as the reclaim policy says.
        let gone = """
            NOT EXISTS (SELECT 1 FROM ledger_desired d WHERE l.target_kind = d.target_kind AND l.target_id = d.target_id)
            """
        let unreached = sql.unreached
        if !unreached.delete.isEmpty {
            try await transaction.query(
                """
                DELETE FROM licenses l WHERE l.asset_id = \(asset.id) AND \(unescaped: gone)
                  AND l.state IN \(unescaped: LicenseState.sqlList(unreached.delete))
                """
            )
        }
        var released = 0
        var kept = 0
        if !unreached.release.isEmpty {
            released = try await Self.release(
                asset,
                where: "l.state IN \(LicenseState.sqlList(unreached.release)) AND \(gone)",
                transaction
            )
        }
        if !unreached.remove.isEmpty {
            kept =
                try await transaction.query(
                    """
                    UPDATE licenses l SET state = 'removing', since = clock_timestamp(), updated_at = clock_timestamp()
                    WHERE l.asset_id = \(asset.id) AND \(unescaped: gone)
                      AND l.state IN \(unescaped: LicenseState.sqlList(unreached.remove))
                    """
                ).affectedRows ?? 0
        }
        try await Self.allocate(asset, transaction)
        return (released, kept)
    }

    /// Gives back the asset's seats that match `condition` (LicenseEvent.intentChanged(.none) and removal reports):
    /// a seat whose association was never sent to Apple is simply dropped with it (nothing to undo; the delete
    /// trigger cancels the association); the others become 'releasing' and Apple is asked to take them back (the
    /// outbox). `condition` is fixed SQL over `licenses l` (no values: the asset's id is bound). Returns the seats
    /// given back.
    @discardableResult
    static func release(_ asset: LockedAsset, where condition: String, _ transaction: PostgresTransaction) async throws
        -> Int
    {
        let dropped =
            try await transaction.query(
                """
                DELETE FROM licenses l
                WHERE l.asset_id = \(asset.id) AND \(unescaped: condition) AND l.state IN ('reserved', 'removing')
                  AND EXISTS (SELECT 1 FROM apple_outbox o
                              WHERE o.license_id = l.id AND o.operation = 'associate' AND o.state = 'pending')
                """
            ).affectedRows ?? 0
        let released =
            try await transaction.query(
                """
                WITH released AS (
                    UPDATE licenses l SET state = 'releasing', wait_seq = NULL, since = clock_timestamp(),
                        updated_at = clock_timestamp()
                    WHERE l.asset_id = \(asset.id) AND \(unescaped: condition)
                      AND l.state IN ('reserved', 'granted', 'removing')
                    RETURNING l.id, l.asset_id, l.serial_number, l.user_id
                )
                \(unescaped: Self.outboxInsert("disassociate", from: "released"))
                """
            ).affectedRows ?? 0
        return Int(dropped) + Int(released)
    }

    /// R15: hands free seats to waiters in line order (LicenseEvent.seatFreed), and writes what Apple must be told.
    static func allocate(_ asset: LockedAsset, _ transaction: PostgresTransaction) async throws {
        let limit = try await Self.freeSeats(asset, transaction)
        guard limit > 0 else { return }
        // The seats and their associations for Apple in one statement.
        try await transaction.query(
            """
            WITH next AS (
                SELECT id FROM licenses
                WHERE asset_id = \(asset.id) AND state = 'waiting'
                ORDER BY wait_seq
                LIMIT \(limit)
            ), granted AS (
                UPDATE licenses l SET state = 'reserved', wait_seq = NULL, reason = '', since = clock_timestamp(),
                    updated_at = clock_timestamp()
                FROM next WHERE l.id = next.id
                RETURNING l.id, l.asset_id, l.serial_number, l.user_id
            )
            \(unescaped: Self.outboxInsert("associate", from: "granted"))
            """
        )
    }

    /// Seats this service may still hand out for the asset (bought, minus held elsewhere, minus held here).
    static func freeSeats(_ asset: LockedAsset, _ transaction: PostgresTransaction) async throws -> Int {
        if asset.unlimited { return Int(Int32.max) }
        let held = try await Self.count(asset.id, states: Self.heldStates, transaction)
        return max(0, asset.capacity - held)
    }

    /// The statement that writes outbox rows asking Apple to `operation` ("associate" or "disassociate", a literal of
    /// this file) the seats in `source`: a CTE returning the rows' id, asset_id, serial_number and user_id. A user's
    /// seat names the user by this service's client user id (the directory id); the push registers users Apple does
    /// not know yet first (R19, R20). Fixed SQL: every value comes from the rows.
    static func outboxInsert(_ operation: String, from source: String) -> String {
        """
        INSERT INTO apple_outbox (token_id, operation, adam_id, pricing_param, serial_number, client_user_id, license_id)
        SELECT s.token_id, '\(operation)', s.adam_id, s.pricing_param, r.serial_number,
               CASE WHEN r.user_id IS NULL THEN '' ELSE coalesce(v.client_user_id, r.user_id::text) END, r.id
        FROM \(source) r
        JOIN assets s ON s.id = r.asset_id
        LEFT JOIN vpp_users v ON v.token_id = s.token_id AND v.user_id = r.user_id
        ORDER BY r.id
        """
    }

    static func assignmentAsset(_ id: UUID, _ transaction: PostgresTransaction) async throws -> UUID {
        let rows = try await transaction.query("SELECT asset_id FROM assignments WHERE id = \(id)")
        guard let row = rows.first else {
            throw StorageError.notFound("No assignment with id \(id.lowercasedText).")
        }
        return try row.decode(UUID.self, at: 0)
    }

    static func assignment(_ id: UUID, _ transaction: PostgresTransaction) async throws -> AssignmentRecord {
        let rows = try await transaction.query(
            "SELECT \(unescaped: Self.assignmentColumns) FROM assignments a JOIN assets s ON s.id = a.asset_id WHERE a.id = \(id)"
        )
        guard let row = rows.first else {
            throw StorageError.notFound("No assignment with id \(id.lowercasedText).")
        }
        var record = try Self.decodeAssignment(row)
        try await Self.fillCounts(&record, transaction)
        return record
    }

    /// The assignment's group's targets and how their licenses of the asset stand: `granted` counts targets licensed
    /// and not being removed, the others count the states every RPC reports (`TargetState`), so they agree with
    /// ListLicenses.
    static func fillCounts(_ record: inout AssignmentRecord, _ transaction: PostgresTransaction) async throws {
        let group = record.groupID
        let kind = record.licenseType.rawValue
        record.targets = try await transaction.query(
            """
            SELECT count(*)::bigint FROM (
                SELECT gd.device_id AS device_id, NULL::uuid AS user_id FROM group_devices gd
                WHERE gd.group_id = \(group) AND \(kind) = 'device'
                UNION
                SELECT d.id, NULL FROM group_users gu JOIN devices d ON d.owner_user_id = gu.user_id
                WHERE gu.group_id = \(group) AND \(kind) = 'device' AND d.enrollment = 'user_affiliated'
                UNION
                SELECT NULL, gu.user_id FROM group_users gu
                WHERE gu.group_id = \(group) AND \(kind) = 'user'
                UNION
                SELECT NULL, d.owner_user_id FROM group_devices gd JOIN devices d ON d.id = gd.device_id
                WHERE gd.group_id = \(group) AND \(kind) = 'user' AND d.enrollment = 'user_affiliated'
                  AND d.owner_user_id IS NOT NULL
            ) t
            """
        ).single().decode(Int.self, at: 0)
        let groups = try Self.stateGroups(
            try await transaction.query(
                """
                SELECT \(unescaped: Self.stateGroupColumns) FROM licenses l
                WHERE l.asset_id = \(record.assetID) AND l.target_id IN (
                    SELECT gd.device_id FROM group_devices gd WHERE gd.group_id = \(group) AND \(kind) = 'device'
                    UNION
                    SELECT d.id FROM group_users gu JOIN devices d ON d.owner_user_id = gu.user_id
                    WHERE gu.group_id = \(group) AND \(kind) = 'device' AND d.enrollment = 'user_affiliated'
                    UNION
                    SELECT gu.user_id FROM group_users gu WHERE gu.group_id = \(group) AND \(kind) = 'user'
                    UNION
                    SELECT d.owner_user_id FROM group_devices gd JOIN devices d ON d.id = gd.device_id
                    WHERE gd.group_id = \(group) AND \(kind) = 'user' AND d.enrollment = 'user_affiliated'
                      AND d.owner_user_id IS NOT NULL)
                  AND l.target_kind = \(kind)
                GROUP BY 1, 2, 3
                """
            )
        )
        // Licensed and not being removed (removing and releasing seats still count in the asset's in_use).
        record.granted = groups.filter { [.reserved, .granted].contains($0.ledger) }.reduce(0) { $0 + $1.count }
        record.waiting = groups.filter { $0.target == .waitingForLicense }.reduce(0) { $0 + $1.count }
        record.installed = groups.filter { $0.target == .installed }.reduce(0) { $0 + $1.count }
        record.failed = groups.filter { $0.target == .failed }.reduce(0) { $0 + $1.count }
    }
}
