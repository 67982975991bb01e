public import Foundation
public import Logging
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
    /// The ledger state: available, waiting, reserved, granted, removing, releasing, failed, not_applicable.
    public var state: String
    public var reason: String
    /// installed, failed, removed, or none.
    public var installState: String
    public var installReason: String
    /// For waiters: 1 is next.
    public var queuePosition: Int
    public var since: Date
}

/// Per-asset counts of the ledger (R15, R23).
public struct LicenseUsageRecord: Sendable, Hashable {
    public var asset: AssetRecord
    /// Seats this service holds or has asked for (reserved, granted, removing, releasing).
    public var held = 0
    public var reserved = 0
    public var waiting = 0
    public var installed = 0
    public var pending = 0
    public var waitingForInvitation = 0
    public var failed = 0
    public var notApplicable = 0
    public var removing = 0
    /// Seats this service may still hand out (nil: unlimited).
    public var free: Int?
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

    public enum ReclaimPolicy: String, Sendable, Hashable, CaseIterable {
        /// Apple is asked at once to take the seat back (the default: seats return to waiters soonest).
        case immediate
        /// The seat stays held as 'removing' until the device reports the app removed (R17's rule, applied to
        /// every reclaim).
        case afterRemoval = "after-removal"
    }

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
                    "Assigning to device groups is available only to organisations created after January 2017, unless the platform operator enables it (R14).",
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
    public func updateAssignment(tenantID: UUID, _ id: UUID, action: AssignmentRecord.Action) async throws -> AssignmentRecord {
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
            let releasing = try await Self.count(asset.id, states: ["releasing"], transaction)
            let removing = try await Self.count(asset.id, states: ["removing"], transaction)
            try await transaction.query("DELETE FROM assignments WHERE id = \(id)")
            try await Self.reconcile(asset: asset, reclaim: self.reclaim, transaction)
            return (
                try await Self.count(asset.id, states: ["releasing"], transaction) - releasing,
                max(0, try await Self.count(asset.id, states: ["removing"], transaction) - removing)
            )
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
            var (items, next) = try CreationCursor.page(rows, pageSize: pageSize, decode: Self.decodeAssignment, id: \.id)
            for index in items.indices { try await Self.fillCounts(&items[index], transaction) }
            return (items, next)
        }
    }

    // MARK: Following the directory and Apple

    /// Re-derives every assigned asset's targets from the directory (membership changed) and serves waiters.
    public func reconcileAll(tenantID: UUID) async throws {
        try await self.inLedger(tenantID) { transaction in
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
            return try await transaction.query("SELECT 1 FROM apple_outbox WHERE token_id = \(tokenID) LIMIT 1").count > 0
        }
    }

    // MARK: The transaction

    /// A tenant-scoped transaction for ledger changes. Tokens whose outbox gained rows are flagged in the control
    /// registry in the same transaction (after leaving the tenant's role), so the push job cannot miss them.
    func inLedger<Result: Sendable>(_ tenantID: UUID, _ body: (PostgresTransaction) async throws -> Result) async throws
        -> Result
    {
        try await self.storage.withTenant(tenantID) { transaction in
            let highWater = try await transaction.query("SELECT coalesce(max(id), 0)::bigint FROM apple_outbox")
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

    static let heldStates = ["reserved", "granted", "removing", "releasing"]

    static func count(_ assetID: UUID, states: [String], _ transaction: PostgresTransaction) async throws -> Int {
        try await transaction.query(
            "SELECT count(*)::bigint FROM licenses WHERE asset_id = \(assetID) AND state = ANY(\(states))"
        ).single().decode(Int.self, at: 0)
    }

    /// Brings the asset's ledger in line with its assignments and the directory, then serves waiters.
    static func reconcile(asset: LockedAsset, reclaim: ReclaimPolicy, _ transaction: PostgresTransaction) async throws {
        // Who should have what: the strongest action over every assignment that reaches the target
        // (0 required, 1 available, 2 uninstall). R18: devices without user affinity are reached only by device
        // targeting, never through a user.
        try await transaction.query(
            """
            CREATE TEMP TABLE IF NOT EXISTS ledger_desired (
                target_kind text NOT NULL, target_id uuid NOT NULL, device_id uuid, user_id uuid, rank integer NOT NULL,
                sort_key text NOT NULL
            ) ON COMMIT DROP
            """
        )
        // Indexed, so lookups stay cheap even where the planner's statistics of `licenses` are stale (rows written
        // earlier in this very transaction).
        try await transaction.query("CREATE INDEX IF NOT EXISTS ledger_desired_target_idx ON ledger_desired (target_kind, target_id)")
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
        // Fresh statistics, so the joins below hash instead of looping over thousands of targets.
        try await transaction.simpleQuery("ANALYZE ledger_desired")

        // New targets: required ones take a free seat at once when nobody is waiting (else they queue behind the
        // waiters, in a stable order: by key); available ones are offered (R21). R20: user licensing cannot work where
        // a policy disables the App Store app.
        let waiting = try await Self.count(asset.id, states: ["waiting"], transaction)
        let direct = waiting == 0 ? try await Self.freeSeats(asset, transaction) : 0
        // One statement writes the new rows, the VPP users their reserved seats need and the outbox rows, so no id
        // makes a round trip through this process (50,000 targets in one assignment stay fast).
        try await transaction.query(
            """
            WITH inserted AS (
                INSERT INTO licenses (id, asset_id, target_kind, device_id, user_id, serial_number, state, wait_seq, reason)
                SELECT gen_random_uuid(), \(asset.id), n.target_kind, n.device_id, n.user_id,
                       CASE WHEN n.target_kind = 'device' THEN n.sort_key ELSE '' END,
                       CASE WHEN n.blocked THEN 'not_applicable'
                            WHEN n.rank = 1 THEN 'available'
                            WHEN n.position <= \(direct) THEN 'reserved'
                            ELSE 'waiting' END,
                       CASE WHEN n.rank = 0 AND NOT n.blocked AND n.position > \(direct) THEN nextval('licenses_wait_seq') END,
                       CASE WHEN n.blocked
                            THEN 'A policy disables the App Store app for this user, so user licensing cannot work: allow the App Store app or use device licensing (R20).'
                            ELSE '' END
                FROM (
                    SELECT d.*, (d.target_kind = 'user' AND coalesce(u.app_store_disabled, false)) AS blocked,
                           row_number() OVER (
                               PARTITION BY (d.rank = 0 AND NOT (d.target_kind = 'user' AND coalesce(u.app_store_disabled, false)))
                               ORDER BY d.sort_key, d.target_id) AS position
                    FROM ledger_desired d
                    LEFT JOIN users u ON u.id = d.user_id
                    WHERE d.rank < 2
                      AND NOT EXISTS (
                          SELECT 1 FROM licenses l
                          WHERE l.asset_id = \(asset.id) AND l.target_kind = d.target_kind AND l.target_id = d.target_id
                      )
                ) n
                ORDER BY n.sort_key, n.target_id
                RETURNING id, asset_id, serial_number, user_id, state
            ),
            reserved AS (SELECT * FROM inserted WHERE state = 'reserved')
            \(unescaped: Self.outboxInsert("associate", from: "reserved"))
            """
        )
        // Targets whose action changed.
        try await transaction.query(
            """
            UPDATE licenses l SET
                state = CASE
                    WHEN d.rank = 0 AND l.state = 'available' THEN 'waiting'
                    WHEN d.rank = 0 AND l.state = 'removing' THEN 'granted'
                    WHEN d.rank = 1 AND l.state = 'waiting' THEN 'available'
                    WHEN d.rank = 2 AND l.state IN ('reserved', 'granted') THEN 'removing'
                    ELSE l.state END,
                wait_seq = CASE WHEN d.rank = 0 AND l.state = 'available' THEN nextval('licenses_wait_seq')
                                WHEN d.rank = 1 AND l.state = 'waiting' THEN NULL
                                ELSE l.wait_seq END,
                since = clock_timestamp(), updated_at = clock_timestamp()
            FROM ledger_desired d
            WHERE l.asset_id = \(asset.id) AND l.target_kind = d.target_kind AND l.target_id = d.target_id
              AND ((d.rank = 0 AND l.state IN ('available', 'removing'))
                   OR (d.rank = 1 AND l.state = 'waiting')
                   OR (d.rank = 2 AND l.state IN ('reserved', 'granted')))
            """
        )
        // Uninstall reaching a waiter or an offer: nothing to free, the row goes.
        try await transaction.query(
            """
            DELETE FROM licenses l USING ledger_desired d
            WHERE l.asset_id = \(asset.id) AND d.rank = 2
              AND l.target_kind = d.target_kind AND l.target_id = d.target_id
              AND l.state IN ('waiting', 'available', 'not_applicable', 'failed')
            """
        )
        // Targets no assignment reaches any more: the reclaim policy takes seats back at once; the rest goes.
        let gone = """
            NOT EXISTS (SELECT 1 FROM ledger_desired d WHERE l.target_kind = d.target_kind AND l.target_id = d.target_id)
            """
        try await transaction.query(
            """
            DELETE FROM licenses l WHERE l.asset_id = \(asset.id) AND \(unescaped: gone)
              AND l.state IN ('waiting', 'available', 'not_applicable', 'failed')
            """
        )
        switch reclaim {
        case .immediate:
            try await Self.release(
                asset,
                where: "l.state IN ('reserved', 'granted', 'removing') AND \(gone)",
                transaction
            )
        case .afterRemoval:
            try await transaction.query(
                """
                UPDATE licenses l SET state = 'removing', updated_at = clock_timestamp()
                WHERE l.asset_id = \(asset.id) AND l.state IN ('reserved', 'granted') AND \(unescaped: gone)
                """
            )
        }
        try await Self.allocate(asset, transaction)
    }

    /// Marks the asset's seats that match `condition` 'releasing' and asks Apple to take them back (the outbox).
    /// `condition` is fixed SQL over `licenses l` (no values: the asset's id is bound).
    static func release(_ asset: LockedAsset, where condition: String, _ transaction: PostgresTransaction) async throws {
        try await transaction.query(
            """
            WITH released AS (
                UPDATE licenses l SET state = 'releasing', wait_seq = NULL, updated_at = clock_timestamp()
                WHERE l.asset_id = \(asset.id) AND \(unescaped: condition)
                RETURNING l.id, l.asset_id, l.serial_number, l.user_id
            )
            \(unescaped: Self.outboxInsert("disassociate", from: "released"))
            """
        )
    }

    /// R15: hands free seats to waiters in line order, and writes what Apple must be told.
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

    /// The assignment's group's targets and how their licenses of the asset stand.
    static func fillCounts(_ record: inout AssignmentRecord, _ transaction: PostgresTransaction) async throws {
        let row = try await transaction.query(
            """
            WITH targets AS (
                SELECT gd.device_id AS device_id, NULL::uuid AS user_id FROM group_devices gd
                WHERE gd.group_id = \(record.groupID) AND \(record.licenseType.rawValue) = 'device'
                UNION
                SELECT d.id, NULL FROM group_users gu JOIN devices d ON d.owner_user_id = gu.user_id
                WHERE gu.group_id = \(record.groupID) AND \(record.licenseType.rawValue) = 'device'
                  AND d.enrollment = 'user_affiliated'
                UNION
                SELECT NULL, gu.user_id FROM group_users gu
                WHERE gu.group_id = \(record.groupID) AND \(record.licenseType.rawValue) = 'user'
                UNION
                SELECT NULL, d.owner_user_id FROM group_devices gd JOIN devices d ON d.id = gd.device_id
                WHERE gd.group_id = \(record.groupID) AND \(record.licenseType.rawValue) = 'user'
                  AND d.enrollment = 'user_affiliated' AND d.owner_user_id IS NOT NULL
            )
            SELECT count(*)::bigint,
                   count(*) FILTER (WHERE l.state IN ('reserved', 'granted'))::bigint,
                   count(*) FILTER (WHERE l.state = 'waiting')::bigint,
                   count(*) FILTER (WHERE l.install_state = 'installed')::bigint,
                   count(*) FILTER (WHERE l.state = 'failed' OR l.install_state = 'failed')::bigint
            FROM targets t
            LEFT JOIN licenses l ON l.asset_id = \(record.assetID)
                 AND l.target_id = coalesce(t.device_id, t.user_id)
            """
        ).single()
        record.targets = try row.decode(Int.self, at: 0)
        record.granted = try row.decode(Int.self, at: 1)
        record.waiting = try row.decode(Int.self, at: 2)
        record.installed = try row.decode(Int.self, at: 3)
        record.failed = try row.decode(Int.self, at: 4)
    }
}
