public import Foundation
import VPPPostgres

/// A tenant's directory: its users, devices, groups and group membership, fed by the tenant's identity directory and
/// device enrollment over RPC. Every call runs in one transaction scoped to the tenant's schema (C3); another tenant's
/// ids and keys read exactly like unknown ones.
///
/// Bulk calls take up to `maxEntriesPerCall` entries and write them in one statement (`unnest` of arrays bound as
/// parameters). Each bad entry is reported by its index in the request, and the good ones are applied.
///
/// After every committed change that can change who should hold a license (users and devices written or deleted,
/// membership changed, a group deleted) the `DirectoryObserver` is told, so the license ledger can follow.
public struct DirectoryStore: Sendable {
    let storage: Storage
    let observer: any DirectoryObserver

    /// Entries (or keys) one bulk call takes; more is INVALID_ARGUMENT for the whole call.
    public static var maxEntriesPerCall: Int { DirectoryValidation.maxEntriesPerCall }

    public init(storage: Storage, observer: any DirectoryObserver = NoDirectoryObserver()) {
        self.storage = storage
        self.observer = observer
    }

    /// Tells the observer after a commit that changed something.
    func changed(_ tenantID: UUID, _ count: Int) async {
        if count > 0 { await self.observer.directoryChanged(tenantID: tenantID) }
    }

    // MARK: Users

    static let userColumns = """
        u.id, u.external_id, u.email, u.apple_id, u.display_name, u.app_store_disabled,
        (SELECT count(*) FROM devices d WHERE d.owner_user_id = u.id)::bigint, u.created_at, u.updated_at,
        (SELECT v.status FROM vpp_users v WHERE v.user_id = u.id
         ORDER BY CASE v.status WHEN 'Associated' THEN 0 WHEN 'Registered' THEN 1 WHEN 'Pending' THEN 2 ELSE 3 END
         LIMIT 1),
        (SELECT v.invitation_url FROM vpp_users v WHERE v.user_id = u.id AND v.status = 'Registered'
           AND v.invitation_url <> '' ORDER BY v.token_id LIMIT 1),
        (extract(epoch FROM u.created_at) * 1000000)::bigint
        """

    static func decodeUser(_ row: PostgresRow) throws -> DirectoryUser {
        DirectoryUser(
            id: try row.decode(UUID.self, at: 0),
            externalID: try row.decode(String.self, at: 1),
            email: try row.decode(String.self, at: 2),
            appleID: try row.decode(String.self, at: 3),
            displayName: try row.decode(String.self, at: 4),
            appStoreDisabled: try row.decode(Bool.self, at: 5),
            deviceCount: try row.decode(Int.self, at: 6),
            createdAt: try row.decode(Date.self, at: 7),
            updatedAt: try row.decode(Date.self, at: 8),
            vppStatus: try row.decode(String?.self, at: 9),
            invitationURL: try row.decode(String?.self, at: 10) ?? ""
        )
    }

    static func problem(_ user: DirectoryUserInput) -> String? {
        typealias V = DirectoryValidation
        return V.keyProblem(user.externalID, field: "external_id", maxLength: V.maxExternalIDLength)
            ?? V.textProblem(user.email, field: "email", maxLength: V.maxEmailLength)
            ?? V.textProblem(user.appleID, field: "apple_id", maxLength: V.maxEmailLength)
            ?? V.textProblem(user.displayName, field: "display_name", maxLength: V.maxDisplayNameLength)
    }

    /// Creates or updates users by external id, in one statement. A user whose fields are all unchanged is not written
    /// (its `updated_at` stays).
    public func upsertUsers(tenantID: UUID, _ users: [DirectoryUserInput]) async throws -> DirectoryUpsertSummary {
        try DirectoryValidation.requireBatchSize(users.count, field: "users")
        var problems = DirectoryValidation.duplicateIndexes(users.map(\.externalID), field: "external_id")
        for (index, user) in users.enumerated() where problems[index] == nil {
            if let problem = Self.problem(user) { problems[index] = problem }
        }
        // R19: one Apple ID belongs to one user (the pair is unique at Apple); twice in one request is refused.
        var appleIDOwners: [String: Set<String>] = [:]
        for user in users where !user.appleID.isEmpty {
            appleIDOwners[user.appleID.lowercased(), default: []].insert(user.externalID)
        }
        for (index, user) in users.enumerated() where problems[index] == nil && !user.appleID.isEmpty {
            if (appleIDOwners[user.appleID.lowercased()]?.count ?? 0) > 1 {
                problems[index] =
                    "This apple_id is given to more than one user in this request; one Apple ID belongs to one user (R19)."
            }
        }
        var summary = DirectoryUpsertSummary()
        var candidates = users.indices.filter { problems[$0] == nil }
        guard !candidates.isEmpty else {
            summary.errors = Self.entryErrors(problems, key: { users[$0].externalID })
            return summary
        }

        let (row, taken): (PostgresRow?, [Int: String]) = try await self.storage.withTenant(tenantID) { transaction in
            // R19: an Apple ID another user of the tenant already has is refused. Upserts that name Apple IDs take the
            // tenant's lock for them first, so two at once cannot both give one Apple ID to two users.
            var taken: [Int: String] = [:]
            let named = candidates.filter { !users[$0].appleID.isEmpty }
            if !named.isEmpty {
                try await transaction.query(
                    "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.users.apple_id'))"
                )
                let owners = try await transaction.query(
                    """
                    SELECT lower(apple_id), external_id FROM users
                    WHERE lower(apple_id) = ANY(\(named.map { users[$0].appleID.lowercased() })::text[])
                    """
                )
                var owner: [String: String] = [:]
                for row in owners { owner[try row.decode(String.self, at: 0)] = try row.decode(String.self, at: 1) }
                for index in named {
                    if let other = owner[users[index].appleID.lowercased()], other != users[index].externalID {
                        taken[index] =
                            "This apple_id is already the Apple ID of user \"\(other.prefix(80))\"; one Apple ID belongs to one user (R19). Correct one of them first."
                    }
                }
                candidates.removeAll { taken[$0] != nil }
            }
            let valid = candidates.map { users[$0] }
            guard !valid.isEmpty else { return (nil as PostgresRow?, taken) }
            let ids = valid.map { _ in UUID() }
            // Rows are written in key order, so two concurrent upserts of overlapping users lock them in the same
            // order and cannot deadlock. `xmax = 0` tells a row inserted from one updated on conflict.
            let counts = try await transaction.query(
                """
                WITH upserted AS (
                    INSERT INTO users (id, external_id, email, apple_id, display_name, app_store_disabled)
                    SELECT i.id, i.external_id, i.email, i.apple_id, i.display_name, i.app_store_disabled
                    FROM unnest(\(ids)::uuid[], \(valid.map(\.externalID))::text[], \(valid.map(\.email))::text[],
                                \(valid.map(\.appleID))::text[], \(valid.map(\.displayName))::text[],
                                \(valid.map(\.appStoreDisabled))::boolean[])
                         AS i(id, external_id, email, apple_id, display_name, app_store_disabled)
                    ORDER BY i.external_id
                    ON CONFLICT (external_id) DO UPDATE SET
                        email = excluded.email, apple_id = excluded.apple_id, display_name = excluded.display_name,
                        app_store_disabled = excluded.app_store_disabled, updated_at = clock_timestamp()
                    WHERE (users.email, users.apple_id, users.display_name, users.app_store_disabled)
                          IS DISTINCT FROM (excluded.email, excluded.apple_id, excluded.display_name,
                                            excluded.app_store_disabled)
                    RETURNING (xmax = 0) AS inserted
                )
                SELECT count(*) FILTER (WHERE inserted)::bigint, count(*) FILTER (WHERE NOT inserted)::bigint
                FROM upserted
                """
            ).single()
            return (counts, taken)
        }
        problems.merge(taken) { first, _ in first }
        summary.errors = Self.entryErrors(problems, key: { users[$0].externalID })
        guard let row else { return summary }
        summary.created = try row.decode(Int.self, at: 0)
        summary.updated = try row.decode(Int.self, at: 1)
        summary.unchanged = users.count - problems.count - summary.created - summary.updated
        await self.changed(tenantID, summary.created + summary.updated)
        return summary
    }

    /// Deletes users by external id. Their devices stay, without an owner; their memberships go.
    public func deleteUsers(tenantID: UUID, externalIDs: [String]) async throws -> DirectoryDeleteSummary {
        try await self.delete(tenantID: tenantID, keys: externalIDs, table: "users", column: "external_id")
    }

    /// One user, device or group by id or by its key (`lookup`): `from` names the table as `alias` (constants of
    /// this type, never input); NOT_FOUND names the entry as `noun` and its key as `keyName`.
    func entry<Entry: Sendable>(
        _ tenantID: UUID,
        _ lookup: DirectoryLookup,
        select columns: String,
        from: String,
        alias: String,
        keyColumn: String,
        noun: String,
        keyName: String,
        decode: (PostgresRow) throws -> Entry
    ) async throws -> Entry {
        let (id, key) = lookup.parts
        return try await self.storage.withTenant(tenantID) { transaction in
            let rows = try await transaction.query(
                """
                SELECT \(unescaped: columns) FROM \(unescaped: from)
                WHERE \(unescaped: alias).id = \(id)::uuid OR \(unescaped: alias).\(unescaped: keyColumn) = \(key)::text
                """
            )
            guard let row = rows.first else { throw Self.notFound(noun, lookup, keyName: keyName) }
            return try decode(row)
        }
    }

    public func getUser(tenantID: UUID, _ lookup: DirectoryLookup) async throws -> DirectoryUser {
        try await self.entry(
            tenantID,
            lookup,
            select: Self.userColumns,
            from: "users u",
            alias: "u",
            keyColumn: "external_id",
            noun: "user",
            keyName: "external id",
            decode: Self.decodeUser
        )
    }

    /// One page of users in creation order.
    /// - Parameters:
    ///   - query: a case-insensitive substring of the external id, e-mail or display name.
    ///   - groupID: only members of this user group.
    public func listUsers(
        tenantID: UUID,
        query: String?,
        groupID: UUID?,
        pageSize: Int,
        after token: PageToken?
    ) async throws -> (users: [DirectoryUser], next: PageToken?) {
        let cursor = try CreationCursor(token)
        let pattern = query.map { "%" + TenantStore.escapeLike($0) + "%" }
        return try await self.storage.withTenant(tenantID) { transaction in
            if let groupID { try await Self.requireGroup(groupID, kind: .user, listing: "users", transaction) }
            let rows = try await transaction.query(
                """
                SELECT \(unescaped: Self.userColumns) FROM users u
                WHERE (\(pattern)::text IS NULL
                       OR u.external_id ILIKE \(pattern) ESCAPE '\\' OR u.email ILIKE \(pattern) ESCAPE '\\'
                       OR u.display_name ILIKE \(pattern) ESCAPE '\\')
                  AND (\(groupID)::uuid IS NULL
                       OR EXISTS (SELECT 1 FROM group_users gu WHERE gu.group_id = \(groupID) AND gu.user_id = u.id))
                  AND (\(cursor?.id)::uuid IS NULL
                       OR (u.created_at, u.id) > ('epoch'::timestamptz + \(cursor?.micros)::bigint * interval '1 microsecond',
                                                 \(cursor?.id)::uuid))
                ORDER BY u.created_at, u.id
                LIMIT \(pageSize + 1)
                """
            )
            let page = try CreationCursor.page(rows, pageSize: pageSize, decode: Self.decodeUser, id: \.id)
            return (page.items, page.next)
        }
    }

    // MARK: Devices

    static let deviceColumns = """
        d.id, d.serial_number, o.external_id, d.enrollment, d.books_app_present, d.name, d.model, d.os_version,
        d.created_at, d.updated_at, (extract(epoch FROM d.created_at) * 1000000)::bigint
        """

    static func decodeDevice(_ row: PostgresRow) throws -> DirectoryDevice {
        let enrollment = try row.decode(String.self, at: 3)
        guard let kind = DeviceEnrollment(rawValue: enrollment) else {
            throw StorageError.internalInconsistency("a device has the unknown enrollment \(enrollment)")
        }
        return DirectoryDevice(
            id: try row.decode(UUID.self, at: 0),
            serialNumber: try row.decode(String.self, at: 1),
            ownerExternalID: try row.decode(String?.self, at: 2),
            enrollment: kind,
            booksAppPresent: try row.decode(Bool.self, at: 4),
            name: try row.decode(String.self, at: 5),
            model: try row.decode(String.self, at: 6),
            osVersion: try row.decode(String.self, at: 7),
            createdAt: try row.decode(Date.self, at: 8),
            updatedAt: try row.decode(Date.self, at: 9)
        )
    }

    static func problem(_ device: DirectoryDeviceInput) -> String? {
        typealias V = DirectoryValidation
        if let problem = V.keyProblem(device.serialNumber, field: "serial_number", maxLength: V.maxSerialNumberLength)
            ?? V.textProblem(device.ownerExternalID, field: "owner_external_id", maxLength: V.maxExternalIDLength)
            ?? V.textProblem(device.name, field: "name", maxLength: V.maxDeviceTextLength)
            ?? V.textProblem(device.model, field: "model", maxLength: V.maxDeviceTextLength)
            ?? V.textProblem(device.osVersion, field: "os_version", maxLength: V.maxDeviceTextLength)
        {
            return problem
        }
        guard let enrollment = device.enrollment else {
            return
                "enrollment is unspecified; say how the device was enrolled: user-affiliated, automated device enrollment or Apple Configurator (R18)."
        }
        if !enrollment.hasUserAffinity && !device.ownerExternalID.isEmpty {
            return
                "Devices enrolled through automated device enrollment or Apple Configurator have no user affinity (R18): leave owner_external_id empty; apps reach them through device groups."
        }
        return nil
    }

    /// Creates or updates devices by serial number, in one statement. Owners are users of this tenant named by their
    /// external id; an unknown owner refuses that entry.
    public func upsertDevices(tenantID: UUID, _ devices: [DirectoryDeviceInput]) async throws -> DirectoryUpsertSummary
    {
        try DirectoryValidation.requireBatchSize(devices.count, field: "devices")
        var problems = DirectoryValidation.duplicateIndexes(devices.map(\.serialNumber), field: "serial_number")
        for (index, device) in devices.enumerated() where problems[index] == nil {
            if let problem = Self.problem(device) { problems[index] = problem }
        }
        let checked = devices.indices.filter { problems[$0] == nil }
        var summary = DirectoryUpsertSummary()
        guard !checked.isEmpty else {
            summary.errors = Self.entryErrors(problems, key: { devices[$0].serialNumber })
            return summary
        }
        let owners = Array(Set(checked.map { devices[$0].ownerExternalID }.filter { !$0.isEmpty }))

        let (valid, created, updated, ownerProblems) = try await self.storage.withTenant(tenantID) { transaction in
            // KEY SHARE keeps the owners from being deleted before this transaction commits.
            var ownerIDs: [String: UUID] = [:]
            if !owners.isEmpty {
                let rows = try await transaction.query(
                    "SELECT external_id, id FROM users WHERE external_id = ANY(\(owners)::text[]) FOR KEY SHARE"
                )
                for row in rows { ownerIDs[try row.decode(String.self, at: 0)] = try row.decode(UUID.self, at: 1) }
            }
            var ownerProblems: [Int: String] = [:]
            var valid: [(input: DirectoryDeviceInput, owner: UUID?)] = []
            for index in checked {
                let device = devices[index]
                if device.ownerExternalID.isEmpty {
                    valid.append((device, nil))
                } else if let owner = ownerIDs[device.ownerExternalID] {
                    valid.append((device, owner))
                } else {
                    ownerProblems[index] =
                        "owner_external_id names no user of this tenant; upsert the user first, or leave it empty."
                }
            }
            guard !valid.isEmpty else { return (0, 0, 0, ownerProblems) }
            let ids = valid.map { _ in UUID() }
            let row = try await transaction.query(
                """
                WITH upserted AS (
                    INSERT INTO devices (id, serial_number, owner_user_id, enrollment, books_app_present, name, model,
                                         os_version)
                    SELECT i.id, i.serial_number, i.owner_user_id, i.enrollment, i.books_app_present, i.name, i.model,
                           i.os_version
                    FROM unnest(\(ids)::uuid[], \(valid.map(\.input.serialNumber))::text[],
                                \(valid.map(\.owner))::uuid[],
                                \(valid.map { $0.input.enrollment?.rawValue ?? "" })::text[],
                                \(valid.map(\.input.booksAppPresent))::boolean[], \(valid.map(\.input.name))::text[],
                                \(valid.map(\.input.model))::text[], \(valid.map(\.input.osVersion))::text[])
                         AS i(id, serial_number, owner_user_id, enrollment, books_app_present, name, model, os_version)
                    ORDER BY i.serial_number
                    ON CONFLICT (serial_number) DO UPDATE SET
                        owner_user_id = excluded.owner_user_id, enrollment = excluded.enrollment,
                        books_app_present = excluded.books_app_present, name = excluded.name, model = excluded.model,
                        os_version = excluded.os_version, updated_at = clock_timestamp()
                    WHERE (devices.owner_user_id, devices.enrollment, devices.books_app_present, devices.name,
                           devices.model, devices.os_version)
                          IS DISTINCT FROM (excluded.owner_user_id, excluded.enrollment, excluded.books_app_present,
                                            excluded.name, excluded.model, excluded.os_version)
                    RETURNING (xmax = 0) AS inserted
                )
                SELECT count(*) FILTER (WHERE inserted)::bigint, count(*) FILTER (WHERE NOT inserted)::bigint
                FROM upserted
                """
            ).single()
            return (valid.count, try row.decode(Int.self, at: 0), try row.decode(Int.self, at: 1), ownerProblems)
        }
        problems.merge(ownerProblems) { first, _ in first }
        summary.errors = Self.entryErrors(problems, key: { devices[$0].serialNumber })
        summary.created = created
        summary.updated = updated
        summary.unchanged = valid - created - updated
        await self.changed(tenantID, summary.created + summary.updated)
        return summary
    }

    /// Deletes devices by serial number; their memberships go with them.
    public func deleteDevices(tenantID: UUID, serialNumbers: [String]) async throws -> DirectoryDeleteSummary {
        try await self.delete(tenantID: tenantID, keys: serialNumbers, table: "devices", column: "serial_number")
    }

    public func getDevice(tenantID: UUID, _ lookup: DirectoryLookup) async throws -> DirectoryDevice {
        try await self.entry(
            tenantID,
            lookup,
            select: Self.deviceColumns,
            from: "devices d LEFT JOIN users o ON o.id = d.owner_user_id",
            alias: "d",
            keyColumn: "serial_number",
            noun: "device",
            keyName: "serial number",
            decode: Self.decodeDevice
        )
    }

    /// One page of devices in creation order.
    /// - Parameters:
    ///   - query: a case-insensitive substring of the serial number or name.
    ///   - groupID: only members of this device group.
    ///   - ownerExternalID: only devices of this user (NOT_FOUND when there is no such user).
    public func listDevices(
        tenantID: UUID,
        query: String?,
        groupID: UUID?,
        ownerExternalID: String?,
        pageSize: Int,
        after token: PageToken?
    ) async throws -> (devices: [DirectoryDevice], next: PageToken?) {
        let cursor = try CreationCursor(token)
        let pattern = query.map { "%" + TenantStore.escapeLike($0) + "%" }
        return try await self.storage.withTenant(tenantID) { transaction in
            if let groupID { try await Self.requireGroup(groupID, kind: .device, listing: "devices", transaction) }
            var ownerID: UUID?
            if let ownerExternalID {
                let rows = try await transaction.query("SELECT id FROM users WHERE external_id = \(ownerExternalID)")
                guard let row = rows.first else {
                    throw Self.notFound("user", .key(ownerExternalID), keyName: "external id")
                }
                ownerID = try row.decode(UUID.self, at: 0)
            }
            let rows = try await transaction.query(
                """
                SELECT \(unescaped: Self.deviceColumns) FROM devices d LEFT JOIN users o ON o.id = d.owner_user_id
                WHERE (\(pattern)::text IS NULL
                       OR d.serial_number ILIKE \(pattern) ESCAPE '\\' OR d.name ILIKE \(pattern) ESCAPE '\\')
                  AND (\(groupID)::uuid IS NULL
                       OR EXISTS (SELECT 1 FROM group_devices gd WHERE gd.group_id = \(groupID) AND gd.device_id = d.id))
                  AND (\(ownerID)::uuid IS NULL OR d.owner_user_id = \(ownerID))
                  AND (\(cursor?.id)::uuid IS NULL
                       OR (d.created_at, d.id) > ('epoch'::timestamptz + \(cursor?.micros)::bigint * interval '1 microsecond',
                                                 \(cursor?.id)::uuid))
                ORDER BY d.created_at, d.id
                LIMIT \(pageSize + 1)
                """
            )
            let page = try CreationCursor.page(rows, pageSize: pageSize, decode: Self.decodeDevice, id: \.id)
            return (page.items, page.next)
        }
    }

    // MARK: Shared

    /// Deletes rows of `table` whose `column` is one of `keys`. `table` and `column` are this file's constants.
    private func delete(tenantID: UUID, keys: [String], table: String, column: String) async throws
        -> DirectoryDeleteSummary
    {
        try DirectoryValidation.requireBatchSize(keys.count, field: "keys")
        let distinct = Array(Set(keys))
        var summary = DirectoryDeleteSummary()
        guard !distinct.isEmpty else { return summary }
        summary.deleted = try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                DELETE FROM \(unescaped: table) WHERE \(unescaped: column) = ANY(\(distinct)::text[])
                """
            ).affectedRows ?? 0
        }
        summary.notFound = distinct.count - summary.deleted
        await self.changed(tenantID, summary.deleted)
        return summary
    }

    static func entryErrors(_ problems: [Int: String], key: (Int) -> String) -> [DirectoryEntryError] {
        problems.keys.sorted().map { DirectoryEntryError(index: $0, rawKey: key($0), message: problems[$0]!) }
    }

    static func notFound(_ what: String, _ lookup: DirectoryLookup, keyName: String) -> StorageError {
        switch lookup {
        case .id(let id):
            return .notFound("No \(what) with id \(id.lowercasedText).")
        case .key(let key):
            return .notFound("No \(what) with \(keyName) \"\(key.prefix(80))\".")
        }
    }
}

extension DirectoryLookup {
    /// The id and the key, one of them nil, for `WHERE id = $1 OR key = $2`.
    var parts: (id: UUID?, key: String?) {
        switch self {
        case .id(let id): return (id, nil)
        case .key(let key): return (nil, key)
        }
    }
}
