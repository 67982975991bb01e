public import Foundation
import VPPPostgres

extension DirectoryGroup.Kind {
    /// The SQL names of what this kind of group holds. Constants only: they are spliced into SQL text.
    fileprivate var tables: (membership: String, memberColumn: String, entities: String, keyColumn: String) {
        switch self {
        case .user: ("group_users", "user_id", "users", "external_id")
        case .device: ("group_devices", "device_id", "devices", "serial_number")
        }
    }

    fileprivate var memberName: String { self == .user ? "user" : "device" }
    fileprivate var keyName: String { self == .user ? "external id" : "serial number" }
}

extension DirectoryStore {
    static let groupColumns = """
        g.id, g.external_id, g.name, g.kind,
        (CASE g.kind WHEN 'user' THEN (SELECT count(*) FROM group_users m WHERE m.group_id = g.id)
                     ELSE (SELECT count(*) FROM group_devices m WHERE m.group_id = g.id) END)::bigint,
        g.created_at, g.updated_at, (extract(epoch FROM g.created_at) * 1000000)::bigint
        """

    static func decodeGroup(_ row: PostgresRow) throws -> DirectoryGroup {
        let kind = try row.decode(String.self, at: 3)
        guard let groupKind = DirectoryGroup.Kind(rawValue: kind) else {
            throw StorageError.internalInconsistency("a group has the unknown kind \(kind)")
        }
        return DirectoryGroup(
            id: try row.decode(UUID.self, at: 0),
            externalID: try row.decode(String.self, at: 1),
            name: try row.decode(String.self, at: 2),
            kind: groupKind,
            memberCount: try row.decode(Int.self, at: 4),
            createdAt: try row.decode(Date.self, at: 5),
            updatedAt: try row.decode(Date.self, at: 6)
        )
    }

    static func groupNotFound(_ groupID: UUID) -> StorageError {
        Self.notFound("group", .id(groupID), keyName: "external id")
    }

    private static func validateName(_ name: String) throws {
        if let problem = DirectoryValidation.keyProblem(
            name,
            field: "name",
            maxLength: DirectoryValidation.maxGroupNameLength
        ) {
            throw StorageError.invalidArgument(problem, field: "name")
        }
    }

    // MARK: Groups

    /// Creates an empty group. R14: a device group only where the tenant may assign to device groups (created after
    /// January 2017, or enabled by an operator).
    public func createGroup(
        tenantID: UUID,
        externalID: String,
        name: String,
        kind: DirectoryGroup.Kind
    ) async throws -> DirectoryGroup {
        if let problem = DirectoryValidation.keyProblem(
            externalID,
            field: "external_id",
            maxLength: DirectoryValidation.maxExternalIDLength
        ) {
            throw StorageError.invalidArgument(problem, field: "external_id")
        }
        try Self.validateName(name)
        try await self.storage.requireActive(tenantID)
        if kind == .device {
            let tenant = try await self.storage.tenants.get(tenantID)
            // R14
            guard tenant.deviceGroupAssignmentAllowed else {
                throw StorageError.failedPrecondition(
                    "Device groups are available only to tenants created after January 2017 (on or after 2017-02-01 UTC) (R14); this tenant was created earlier. Use a user group, or ask the platform operator to enable device-group assignment for this tenant.",
                    reason: "DEVICE_GROUPS_NOT_ALLOWED"
                )
            }
        }
        return try await self.storage.withTenant(tenantID) { transaction in
            let rows = try await transaction.query(
                """
                INSERT INTO groups AS g (id, external_id, name, kind)
                VALUES (\(UUID()), \(externalID), \(name), \(kind.rawValue))
                ON CONFLICT (external_id) DO NOTHING
                RETURNING \(unescaped: Self.groupColumns)
                """
            )
            guard let row = rows.first else {
                throw StorageError.alreadyExists(
                    "This tenant already has a group with external id \"\(externalID.prefix(80))\"; use UpdateGroup to rename it."
                )
            }
            return try Self.decodeGroup(row)
        }
    }

    /// Renames a group; nil changes nothing. The external id and kind never change.
    public func updateGroup(tenantID: UUID, groupID: UUID, name: String?) async throws -> DirectoryGroup {
        if let name { try Self.validateName(name) }
        return try await self.storage.withTenant(tenantID) { transaction in
            let rows = try await transaction.query(
                """
                UPDATE groups g SET name = coalesce(\(name), g.name),
                    updated_at = CASE WHEN g.name = coalesce(\(name), g.name) THEN g.updated_at ELSE clock_timestamp() END
                WHERE g.id = \(groupID)
                RETURNING \(unescaped: Self.groupColumns)
                """
            )
            guard let row = rows.first else { throw Self.groupNotFound(groupID) }
            return try Self.decodeGroup(row)
        }
    }

    /// Deletes a group and its membership.
    public func deleteGroup(tenantID: UUID, groupID: UUID) async throws -> DirectoryDeleteSummary {
        let deleted = try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query("DELETE FROM groups WHERE id = \(groupID)").affectedRows ?? 0
        }
        guard deleted > 0 else { throw Self.groupNotFound(groupID) }
        await self.changed(tenantID, deleted)
        var summary = DirectoryDeleteSummary()
        summary.deleted = deleted
        return summary
    }

    /// The kind of group `groupID` (NOT_FOUND when there is none), read in `transaction`.
    static func groupKind(_ groupID: UUID, _ transaction: PostgresTransaction) async throws -> DirectoryGroup.Kind {
        let rows = try await transaction.query("SELECT kind FROM groups WHERE id = \(groupID)")
        guard let row = rows.first else { throw Self.groupNotFound(groupID) }
        let text = try row.decode(String.self, at: 0)
        guard let kind = DirectoryGroup.Kind(rawValue: text) else {
            throw StorageError.internalInconsistency("a group has the unknown kind \(text)")
        }
        return kind
    }

    public func getGroup(tenantID: UUID, _ lookup: DirectoryLookup) async throws -> DirectoryGroup {
        try await self.entry(
            tenantID,
            lookup,
            select: Self.groupColumns,
            from: "groups g",
            alias: "g",
            keyColumn: "external_id",
            noun: "group",
            keyName: "external id",
            decode: Self.decodeGroup
        )
    }

    /// One page of groups in creation order; `query` is a case-insensitive substring of the external id or name.
    public func listGroups(
        tenantID: UUID,
        kind: DirectoryGroup.Kind?,
        query: String?,
        pageSize: Int,
        after token: PageToken?
    ) async throws -> (groups: [DirectoryGroup], next: PageToken?) {
        let cursor = try CreationCursor(token)
        let pattern = query.map { "%" + TenantStore.escapeLike($0) + "%" }
        return try await self.storage.withTenant(tenantID) { transaction in
            let rows = try await transaction.query(
                """
                SELECT \(unescaped: Self.groupColumns) FROM groups g
                WHERE (\(kind?.rawValue)::text IS NULL OR g.kind = \(kind?.rawValue))
                  AND (\(pattern)::text IS NULL
                       OR g.external_id ILIKE \(pattern) ESCAPE '\\' OR g.name ILIKE \(pattern) ESCAPE '\\')
                  AND (\(cursor?.id)::uuid IS NULL
                       OR (g.created_at, g.id) > ('epoch'::timestamptz + \(cursor?.micros)::bigint * interval '1 microsecond',
                                                 \(cursor?.id)::uuid))
                ORDER BY g.created_at, g.id
                LIMIT \(pageSize + 1)
                """
            )
            let page = try CreationCursor.page(rows, pageSize: pageSize, decode: Self.decodeGroup, id: \.id)
            return (page.items, page.next)
        }
    }

    /// Throws NOT_FOUND for an unknown group and INVALID_ARGUMENT for a group of the other kind (a list filter).
    static func requireGroup(
        _ groupID: UUID,
        kind: DirectoryGroup.Kind,
        listing: String,
        _ transaction: PostgresTransaction
    ) async throws {
        let found = try await Self.groupKind(groupID, transaction)
        guard found == kind else {
            throw StorageError.invalidArgument(
                "group_id names a \(found.rawValue) group, whose members are not \(listing); list them with the other call.",
                field: "group_id"
            )
        }
    }

    // MARK: Membership

    /// Adds members by key: external ids of users to a user group, serial numbers of devices to a device group. A key
    /// that is unknown, or of the other kind, is refused for that entry.
    public func addGroupMembers(tenantID: UUID, groupID: UUID, memberKeys: [String]) async throws
        -> DirectoryMembershipSummary
    {
        try await self.changeMembers(tenantID: tenantID, groupID: groupID, keys: memberKeys, add: true)
    }

    /// Removes members by key; a known member not in the group counts as unchanged.
    public func removeGroupMembers(tenantID: UUID, groupID: UUID, memberKeys: [String]) async throws
        -> DirectoryMembershipSummary
    {
        try await self.changeMembers(tenantID: tenantID, groupID: groupID, keys: memberKeys, add: false)
    }

    private func changeMembers(tenantID: UUID, groupID: UUID, keys: [String], add: Bool) async throws
        -> DirectoryMembershipSummary
    {
        try DirectoryValidation.requireBatchSize(keys.count, field: "member_keys")
        var problems = DirectoryValidation.duplicateIndexes(keys, field: "member key")
        for (index, key) in keys.enumerated() where problems[index] == nil {
            if let problem = DirectoryValidation.keyProblem(
                key,
                field: "member key",
                maxLength: DirectoryValidation.maxExternalIDLength
            ) {
                problems[index] = problem
            }
        }
        let checked = keys.indices.filter { problems[$0] == nil }
        let (changed, resolvedCount, lookupProblems) = try await self.storage.withTenant(tenantID) { transaction in
            let kind = try await Self.groupKind(groupID, transaction)
            let tables = kind.tables
            let wanted = checked.map { keys[$0] }
            guard !wanted.isEmpty else { return (0, 0, [Int: String]()) }
            // KEY SHARE keeps the members from being deleted before this transaction commits.
            var ids: [String: UUID] = [:]
            let rows = try await transaction.query(
                """
                SELECT \(unescaped: tables.keyColumn), id FROM \(unescaped: tables.entities)
                WHERE \(unescaped: tables.keyColumn) = ANY(\(wanted)::text[]) FOR KEY SHARE
                """
            )
            for row in rows { ids[try row.decode(String.self, at: 0)] = try row.decode(UUID.self, at: 1) }

            // Unknown keys: say when they name the other kind of member.
            let unknown = wanted.filter { ids[$0] == nil }
            var otherKind: Set<String> = []
            if !unknown.isEmpty {
                let other: DirectoryGroup.Kind = kind == .user ? .device : .user
                let rows = try await transaction.query(
                    """
                    SELECT \(unescaped: other.tables.keyColumn) FROM \(unescaped: other.tables.entities)
                    WHERE \(unescaped: other.tables.keyColumn) = ANY(\(unknown)::text[])
                    """
                )
                for row in rows { otherKind.insert(try row.decode(String.self, at: 0)) }
            }
            var lookupProblems: [Int: String] = [:]
            var memberIDs: [UUID] = []
            for index in checked {
                if let id = ids[keys[index]] {
                    memberIDs.append(id)
                } else if otherKind.contains(keys[index]) {
                    lookupProblems[index] =
                        "This key names a \(kind == .user ? "device" : "user"); a \(kind.rawValue) group holds \(kind.memberName)s only, named by \(kind.keyName)."
                } else {
                    lookupProblems[index] = "No \(kind.memberName) of this tenant has this \(kind.keyName)."
                }
            }
            guard !memberIDs.isEmpty else { return (0, 0, lookupProblems) }
            let changed: Int
            if add {
                changed =
                    try await transaction.query(
                        """
                        INSERT INTO \(unescaped: tables.membership) (group_id, \(unescaped: tables.memberColumn))
                        SELECT \(groupID), m FROM unnest(\(memberIDs)::uuid[]) AS m ORDER BY m
                        ON CONFLICT DO NOTHING
                        """
                    ).affectedRows ?? 0
            } else {
                changed =
                    try await transaction.query(
                        """
                        DELETE FROM \(unescaped: tables.membership)
                        WHERE group_id = \(groupID) AND \(unescaped: tables.memberColumn) = ANY(\(memberIDs)::uuid[])
                        """
                    ).affectedRows ?? 0
            }
            return (changed, memberIDs.count, lookupProblems)
        }
        problems.merge(lookupProblems) { first, _ in first }
        var summary = DirectoryMembershipSummary()
        summary.changed = changed
        summary.unchanged = resolvedCount - changed
        summary.errors = Self.entryErrors(problems, key: { keys[$0] })
        await self.changed(tenantID, changed)
        return summary
    }

    /// One page of a group's members' keys (external ids or serial numbers), in byte order of the key.
    public func listGroupMembers(
        tenantID: UUID,
        groupID: UUID,
        pageSize: Int,
        after token: PageToken?
    ) async throws -> (keys: [String], next: PageToken?) {
        if let token, token.values.count != 1 {
            throw StorageError.invalidArgument(
                "page_token is not a token this server issued.",
                field: "page.page_token"
            )
        }
        let after = token?.values.first
        return try await self.storage.withTenant(tenantID) { transaction in
            let kind = try await Self.groupKind(groupID, transaction)
            let tables = kind.tables
            let rows = try await transaction.query(
                """
                SELECT e.\(unescaped: tables.keyColumn)
                FROM \(unescaped: tables.membership) m JOIN \(unescaped: tables.entities) e
                     ON e.id = m.\(unescaped: tables.memberColumn)
                WHERE m.group_id = \(groupID)
                  AND (\(after)::text IS NULL OR e.\(unescaped: tables.keyColumn) COLLATE "C" > \(after)::text COLLATE "C")
                ORDER BY e.\(unescaped: tables.keyColumn) COLLATE "C"
                LIMIT \(pageSize + 1)
                """
            )
            let keys = try rows.prefix(pageSize).map { try $0.decode(String.self, at: 0) }
            guard rows.count > pageSize, let last = keys.last else { return (keys, nil) }
            return (keys, PageToken([last]))
        }
    }
}
