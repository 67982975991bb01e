public import Foundation
public import VPPLicensing
import VPPPostgres

/// A device's report of one app or book (R17, R23).
public struct InstallReportInput: Sendable, Hashable {
    public enum Outcome: String, Sendable, Hashable {
        case installed
        case failed
        case removed
    }

    public var serialNumber: String
    public var adamID: String
    public var outcome: Outcome
    public var reason: String

    public init(serialNumber: String, adamID: String, outcome: Outcome, reason: String) {
        self.serialNumber = serialNumber
        self.adamID = adamID
        self.outcome = outcome
        self.reason = reason
    }
}

extension LicenseLedger {
    /// R20: the entry is a user license whose user has not accepted Apple's invitation (not registered at Apple yet,
    /// or registered and invited). Over `licenses l`.
    static let invitationPending = """
        (l.user_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM vpp_users v JOIN assets ia ON ia.token_id = v.token_id
            WHERE ia.id = l.asset_id AND v.user_id = l.user_id AND v.status = 'Associated'))
        """

    static let entryColumns = """
        l.id, l.asset_id, l.target_kind, coalesce(d.serial_number, ''), coalesce(u.external_id, ''), l.state, l.reason,
        l.install_state, l.install_reason,
        CASE WHEN l.state = 'waiting'
             THEN (SELECT count(*) FROM licenses w WHERE w.asset_id = l.asset_id AND w.state = 'waiting'
                   AND w.wait_seq <= l.wait_seq) ELSE 0 END,
        l.since, \(invitationPending)
        """

    /// Columns after `entryColumns` start here.
    static let entryColumnCount = 12

    static func decodeEntry(_ row: PostgresRow) throws -> LicenseRecord {
        let state = try row.decode(String.self, at: 5)
        let install = try row.decode(String.self, at: 7)
        guard let ledgerState = LicenseState(rawValue: state), let report = InstallReport(rawValue: install) else {
            throw StorageError.internalInconsistency("A license has the unknown state \(state)/\(install).")
        }
        return LicenseRecord(
            id: try row.decode(UUID.self, at: 0),
            assetID: try row.decode(UUID.self, at: 1),
            targetKind: AssignmentRecord.LicenseType(rawValue: try row.decode(String.self, at: 2)) ?? .device,
            serialNumber: try row.decode(String.self, at: 3),
            userExternalID: try row.decode(String.self, at: 4),
            state: ledgerState,
            reason: try row.decode(String.self, at: 6),
            installState: report,
            installReason: try row.decode(String.self, at: 8),
            queuePosition: try row.decode(Int.self, at: 9),
            since: try row.decode(Date.self, at: 10),
            invitationPending: try row.decode(Bool.self, at: 11)
        )
    }

    /// A SQL condition over `licenses l` selecting the entries whose `TargetState` is `state` (fixed text).
    static func condition(_ state: TargetState) -> String {
        let sources = state.sources.map { source in
            "(l.state = '\(source.state.rawValue)' AND l.install_state = '\(source.install.rawValue)' AND \(source.invitationPending ? "" : "NOT ")\(invitationPending))"
        }
        return sources.isEmpty ? "false" : "(" + sources.joined(separator: " OR ") + ")"
    }

    /// Selected over `licenses l` with `GROUP BY 1, 2, 3`: what decides each entry's `TargetState`, and how many;
    /// `byState` maps and adds them up in Swift with `TargetState.of`, the one mapping.
    static let stateGroupColumns = "l.state, l.install_state, \(invitationPending) AS invited, count(*)::bigint"

    static func byState(_ rows: PostgresRows) throws -> [TargetState: Int] {
        try Self.stateGroups(rows).reduce(into: [:]) { $0[$1.target, default: 0] += $1.count }
    }

    static func stateGroups(_ rows: PostgresRows) throws -> [(ledger: LicenseState, target: TargetState, count: Int)] {
        try rows.map { row in
            let state = try row.decode(String.self, at: 0)
            let install = try row.decode(String.self, at: 1)
            guard let ledgerState = LicenseState(rawValue: state), let report = InstallReport(rawValue: install) else {
                throw StorageError.internalInconsistency("A license has the unknown state \(state)/\(install).")
            }
            let target = TargetState.of(
                ledgerState,
                install: report,
                invitationPending: try row.decode(Bool.self, at: 2)
            )
            return (ledgerState, target, try row.decode(Int.self, at: 3))
        }
    }

    /// R15, R23: an asset's counts (the same as GetLicenseCounts and the catalog's) and its entries by state, read in
    /// one transaction so they agree.
    public func usage(tenantID: UUID, assetID: UUID) async throws -> LicenseUsageRecord {
        try await self.storage.withTenant(tenantID) { transaction in
            let rows = try await transaction.query(
                """
                SELECT \(unescaped: CatalogStore.columns) FROM assets a
                CROSS JOIN LATERAL (SELECT \(unescaped: CatalogStore.ledgerCountColumns) FROM licenses l WHERE l.asset_id = a.id) c
                WHERE a.id = \(assetID)
                """
            )
            guard let row = rows.first else {
                throw StorageError.notFound("No app or book with id \(assetID.lowercasedText).")
            }
            var usage = LicenseUsageRecord(asset: try CatalogStore.decode(row))
            usage.byState = try Self.byState(
                try await transaction.query(
                    "SELECT \(unescaped: Self.stateGroupColumns) FROM licenses l WHERE l.asset_id = \(assetID) GROUP BY 1, 2, 3"
                )
            )
            return usage
        }
    }

    /// The asset's ledger: holders first, then waiters in line order. `state` filters on the reported state.
    public func entries(
        tenantID: UUID,
        assetID: UUID,
        state: TargetState?,
        pageSize: Int,
        after token: PageToken?
    ) async throws -> (entries: [LicenseRecord], next: PageToken?) {
        var afterKey: (Int64, UUID)?
        if let token {
            guard token.values.count == 2, let order = Int64(token.values[0]),
                let id = UUID(canonicalText: token.values[1])
            else {
                throw StorageError.invalidArgument(
                    "page_token is not a token this server issued.",
                    field: "page.page_token"
                )
            }
            afterKey = (order, id)
        }
        _ = try await CatalogStore(storage: self.storage).get(tenantID: tenantID, assetID)
        let filter = state.map(Self.condition) ?? "true"
        return try await self.storage.withTenant(tenantID) { transaction in
            // Order: holders (by since), then waiters by place in line. The key: one bigint and the id.
            let rows = try await transaction.query(
                """
                SELECT * FROM (
                    SELECT \(unescaped: Self.entryColumns),
                           CASE WHEN l.state = 'waiting' THEN 4000000000000000000 + l.wait_seq
                                ELSE (extract(epoch FROM l.since) * 1000000)::bigint END AS sort_key
                    FROM licenses l
                    LEFT JOIN devices d ON d.id = l.device_id
                    LEFT JOIN users u ON u.id = l.user_id
                    WHERE l.asset_id = \(assetID) AND \(unescaped: filter)
                ) e
                WHERE (\(afterKey?.0)::bigint IS NULL OR (e.sort_key, e.id) > (\(afterKey?.0)::bigint, \(afterKey?.1)::uuid))
                ORDER BY e.sort_key, e.id
                LIMIT \(pageSize + 1)
                """
            )
            let items = try rows.prefix(pageSize).map(Self.decodeEntry)
            guard rows.count > pageSize, let last = items.last else { return (items, nil) }
            let key = try rows[pageSize - 1].decode(Int64.self, at: Self.entryColumnCount)
            return (items, PageToken(["\(key)", last.id.uuidString]))
        }
    }

    /// R23: everything assigned to one device (by serial number), or to one user (by external id), with notes that
    /// explain states (R18, R19, R20, R22).
    public func targetStatus(tenantID: UUID, serialNumber: String?, userExternalID: String?) async throws
        -> (entries: [LicenseRecord], adamIDs: [UUID: String], productTypes: [UUID: String], notes: [String])
    {
        try await self.storage.withTenant(tenantID) { transaction in
            var notes: [String] = []
            let condition: String
            var targetID: UUID
            if let serialNumber {
                let rows = try await transaction.query(
                    "SELECT id, enrollment, books_app_present, owner_user_id FROM devices WHERE serial_number = \(serialNumber)"
                )
                guard let row = rows.first else {
                    throw StorageError.notFound("No device with serial number \(serialNumber.prefix(64)).")
                }
                targetID = try row.decode(UUID.self, at: 0)
                let enrollment = try row.decode(String.self, at: 1)
                if enrollment != "user_affiliated" {
                    notes.append(
                        "No user affinity (\(enrollment == "automated" ? "automated device enrollment" : "Apple Configurator")): apps reach this device only through device targeting, never through a user (R18)."
                    )
                }
                if !(try row.decode(Bool.self, at: 2)) {
                    notes.append(
                        "The Books app is missing: books cannot be read on this device until it is reinstalled (R22)."
                    )
                }
                // The device's own licenses, and its owner's user licenses.
                condition =
                    "(l.device_id = t.id OR l.user_id = (SELECT owner_user_id FROM devices WHERE id = t.id AND enrollment = 'user_affiliated'))"
            } else {
                let rows = try await transaction.query(
                    "SELECT id, app_store_disabled, (SELECT count(*) FROM devices WHERE owner_user_id = users.id)::bigint FROM users WHERE external_id = \(userExternalID ?? "")"
                )
                guard let row = rows.first else {
                    throw StorageError.notFound("No user with external id \((userExternalID ?? "").prefix(256)).")
                }
                targetID = try row.decode(UUID.self, at: 0)
                if try row.decode(Bool.self, at: 1) {
                    notes.append(
                        "A policy disables the App Store app for this user: user licensing cannot work; allow the App Store app or use device licensing (R20)."
                    )
                }
                let devices = try row.decode(Int.self, at: 2)
                if devices > 5 {
                    notes.append(
                        "The user has \(devices) devices; one Apple ID with its user covers at most five devices (R19)."
                    )
                }
                // R19: a user and an Apple ID form a unique pair, and Apple invites by e-mail: another user with the same
                // Apple ID or e-mail cannot both accept.
                let twins = try await transaction.query(
                    """
                    SELECT o.external_id, (o.apple_id <> '' AND lower(o.apple_id) = lower(me.apple_id)),
                           (o.email <> '' AND lower(o.email) = lower(me.email))
                    FROM users me JOIN users o ON o.id <> me.id
                         AND ((me.apple_id <> '' AND lower(o.apple_id) = lower(me.apple_id))
                              OR (me.email <> '' AND lower(o.email) = lower(me.email)))
                    WHERE me.id = \(targetID)
                    ORDER BY o.external_id LIMIT 5
                    """
                )
                for twin in twins {
                    let other = String(try twin.decode(String.self, at: 0).prefix(80))
                    if try twin.decode(Bool.self, at: 1) {
                        notes.append(
                            "User \"\(other)\" has the same Apple ID: a user and an Apple ID form a unique pair, so only one of them can use it for VPP (R19). Correct the directory."
                        )
                    } else {
                        notes.append(
                            "User \"\(other)\" has the same e-mail: Apple sends the VPP invitation by e-mail, and only one Apple ID can accept it (R19). Give each user their own e-mail or Apple ID."
                        )
                    }
                }
                // Holds a user license but has not accepted at Apple (not registered yet, or invited).
                let invited = try await transaction.query(
                    """
                    SELECT count(*)::bigint FROM licenses l JOIN assets s ON s.id = l.asset_id
                    WHERE l.user_id = \(targetID) AND l.state IN ('reserved', 'granted')
                      AND NOT EXISTS (SELECT 1 FROM vpp_users v WHERE v.token_id = s.token_id AND v.user_id = l.user_id
                                      AND v.status = 'Associated')
                    """
                ).single().decode(Int.self, at: 0)
                if invited > 0 {
                    notes.append(
                        "The user has not yet accepted Apple's VPP invitation; installs wait until they do (R20)."
                    )
                }
                condition = "l.user_id = t.id"
            }
            let rows = try await transaction.query(
                """
                SELECT \(unescaped: Self.entryColumns), s.adam_id, s.product_type
                FROM (SELECT \(targetID)::uuid AS id) t
                CROSS JOIN licenses l
                JOIN assets s ON s.id = l.asset_id
                LEFT JOIN devices d ON d.id = l.device_id
                LEFT JOIN users u ON u.id = l.user_id
                WHERE \(unescaped: condition)
                ORDER BY s.adam_id, l.id
                """
            )
            var adamIDs: [UUID: String] = [:]
            var types: [UUID: String] = [:]
            var entries: [LicenseRecord] = []
            for row in rows {
                let entry = try Self.decodeEntry(row)
                adamIDs[entry.assetID] = try row.decode(String.self, at: Self.entryColumnCount)
                types[entry.assetID] = try row.decode(String.self, at: Self.entryColumnCount + 1)
                entries.append(entry)
            }
            return (entries, adamIDs, types, notes)
        }
    }

    /// R17, R23: install results from devices. A removal of an app being uninstalled frees its seat (Apple is told
    /// through the outbox). Returns (applied, seats freed, errors by index).
    public func reportInstalls(tenantID: UUID, _ reports: [InstallReportInput]) async throws -> (
        applied: Int, freed: Int, errors: [String]
    ) {
        try await self.inLedger(tenantID) { transaction in
            var applied = 0
            var freed = 0
            var errors: [String] = []
            var assetsToRelease: Set<UUID> = []
            for (index, report) in reports.enumerated() {
                let rows = try await transaction.query(
                    """
                    UPDATE licenses l SET install_state = \(report.outcome.rawValue), install_reason = \(String(report.reason.prefix(500))),
                        updated_at = clock_timestamp()
                    FROM assets s, devices d
                    WHERE s.id = l.asset_id AND s.adam_id = \(report.adamID) AND d.serial_number = \(report.serialNumber)
                      AND (l.device_id = d.id OR (l.user_id = d.owner_user_id AND d.enrollment = 'user_affiliated'))
                      -- Only a license reaches a device: offers, waiters and refusals hold none to install or remove.
                      AND l.state IN \(unescaped: LicenseState.sqlList(LicenseState.seatHolding))
                    RETURNING l.asset_id, l.state
                    """
                )
                if rows.isEmpty {
                    errors.append(
                        "\(index): no license of \(report.adamID.prefix(32)) for device \(report.serialNumber.prefix(64))"
                    )
                    continue
                }
                applied += 1
                for row in rows where report.outcome == .removed {
                    if try row.decode(String.self, at: 1) == "removing" {
                        assetsToRelease.insert(try row.decode(UUID.self, at: 0))
                    }
                }
            }
            for assetID in assetsToRelease.sorted(by: { $0.uuidString < $1.uuidString }) {
                // removalReported: the seat is given back at Apple (R17); the line moves once Apple confirms.
                let asset = try await Self.lockAsset(assetID, transaction)
                freed += try await Self.release(
                    asset,
                    where: "l.state = 'removing' AND l.install_state = 'removed'",
                    transaction
                )
                try await Self.allocate(asset, transaction)
            }
            return (applied, freed, errors)
        }
    }

    /// R21: a user asks for an AVAILABLE app; a seat is handed out if one is left, else the user waits in line.
    public func requestApp(tenantID: UUID, assetID: UUID, userExternalID: String, serialNumber: String?) async throws
        -> LicenseRecord
    {
        try await self.inLedger(tenantID) { transaction in
            let asset = try await Self.lockAsset(assetID, transaction)
            let users = try await transaction.query("SELECT id FROM users WHERE external_id = \(userExternalID)")
            guard let userID = try users.first?.decode(UUID.self, at: 0) else {
                throw StorageError.notFound("No user with external id \(userExternalID.prefix(256)).")
            }
            var deviceID: UUID?
            if let serialNumber, !serialNumber.isEmpty {
                let devices = try await transaction.query(
                    "SELECT id FROM devices WHERE serial_number = \(serialNumber)"
                )
                guard let id = try devices.first?.decode(UUID.self, at: 0) else {
                    throw StorageError.notFound("No device with serial number \(serialNumber.prefix(64)).")
                }
                deviceID = id
            }
            // The offer is for the user (user licensing) or for the device (device licensing). One request takes one
            // license: the device's offer when the request names a device that has one, else the user's.
            let updated = try await transaction.query(
                """
                UPDATE licenses SET state = 'waiting', wait_seq = nextval('licenses_wait_seq'), requested = true,
                    since = clock_timestamp(), updated_at = clock_timestamp()
                WHERE id = (
                    SELECT id FROM licenses
                    WHERE asset_id = \(assetID) AND state = 'available'
                      AND (user_id = \(userID) OR device_id = \(deviceID))
                    ORDER BY (device_id IS NOT NULL AND device_id = \(deviceID)) DESC, id
                    LIMIT 1
                )
                RETURNING id
                """
            )
            guard let licenseID = try updated.first?.decode(UUID.self, at: 0) else {
                let existing = try await transaction.query(
                    "SELECT id FROM licenses WHERE asset_id = \(assetID) AND (user_id = \(userID) OR device_id = \(deviceID)) LIMIT 1"
                )
                guard let id = try existing.first?.decode(UUID.self, at: 0) else {
                    throw StorageError.failedPrecondition(
                        "This app is not offered to this user or device: it needs an AVAILABLE assignment to one of their groups (R21).",
                        reason: "NOT_AVAILABLE"
                    )
                }
                return try await Self.entry(id, transaction)
            }
            try await Self.allocate(asset, transaction)
            return try await Self.entry(licenseID, transaction)
        }
    }

    static func entry(_ id: UUID, _ transaction: PostgresTransaction) async throws -> LicenseRecord {
        try Self.decodeEntry(
            try await transaction.query(
                """
                SELECT \(unescaped: Self.entryColumns) FROM licenses l
                LEFT JOIN devices d ON d.id = l.device_id LEFT JOIN users u ON u.id = l.user_id
                WHERE l.id = \(id)
                """
            ).single()
        )
    }
}
