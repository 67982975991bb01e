public import Foundation
public import Logging
import VPPLogKeys
public import VPPPostgres

/// A tenant as the control schema records it.
public struct TenantRecord: Sendable, Hashable {
    public enum State: String, Sendable, Hashable {
        case active
        case suspended
    }

    public var id: UUID
    public var displayName: String
    public var state: State
    public var suspendedReason: String
    /// C5, R2: how many VPP tokens the tenant may hold.
    public var tokenLimit: Int
    /// The organisation's creation date, which decides R14.
    public var organizationCreatedAt: Date
    /// R14: an operator enabled device-group assignment for a tenant created before 2017-02-01 UTC.
    public var deviceGroupAssignmentEnabled: Bool
    public var schemaVersion: Int
    public var createdAt: Date
    public var updatedAt: Date

    /// R14: device groups are for tenants created after January 2017 (on or after 2017-02-01 UTC), or where an operator enabled them.
    public static let deviceGroupCutoff = Date(timeIntervalSince1970: 1_485_907_200)  // 2017-02-01T00:00:00Z

    public var deviceGroupAssignmentAllowed: Bool {
        self.deviceGroupAssignmentEnabled || self.organizationCreatedAt >= Self.deviceGroupCutoff
    }

    public var schema: TenantSchema { TenantSchema(tenantID: self.id) }
}

/// Creates, reads, changes and deletes tenants: a row in `vpp_control.tenants`, plus the tenant's own schema and role.
public struct TenantStore: Sendable {
    /// C5, R2: the default token limit.
    public static let defaultTokenLimit = 256
    public static let maxTokenLimit = 100_000

    let pool: PostgresPool
    let logger: Logger

    static let columns = """
        id, display_name, state, suspended_reason, token_limit, organization_created_at, device_group_assignment,
        schema_version, created_at, updated_at
        """

    static func decode(_ row: PostgresRow) throws -> TenantRecord {
        TenantRecord(
            id: try row.decode(UUID.self, at: 0),
            displayName: try row.decode(String.self, at: 1),
            state: TenantRecord.State(rawValue: try row.decode(String.self, at: 2)) ?? .suspended,
            suspendedReason: try row.decode(String.self, at: 3),
            tokenLimit: try row.decode(Int.self, at: 4),
            organizationCreatedAt: try row.decode(Date.self, at: 5),
            deviceGroupAssignmentEnabled: try row.decode(Bool.self, at: 6),
            schemaVersion: try row.decode(Int.self, at: 7),
            createdAt: try row.decode(Date.self, at: 8),
            updatedAt: try row.decode(Date.self, at: 9)
        )
    }

    static func validateDisplayName(_ name: String) throws -> String {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(trimmed.count) else {
            throw StorageError.invalidArgument("display_name must be 1 to 200 characters.", field: "display_name")
        }
        guard !trimmed.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw StorageError.invalidArgument(
                "display_name must not contain control characters.",
                field: "display_name"
            )
        }
        return trimmed
    }

    static func validateTokenLimit(_ limit: Int) throws -> Int {
        guard (0...Self.maxTokenLimit).contains(limit) else {
            throw StorageError.invalidArgument("token_limit must be 0 to \(Self.maxTokenLimit).", field: "token_limit")
        }
        return limit
    }

    /// Creates the tenant's row, its role and its schema at the current version, in one transaction: a failure
    /// leaves nothing behind.
    public func create(
        displayName: String,
        tokenLimit: Int?,
        organizationCreatedAt: Date?,
        deviceGroupAssignment: Bool
    ) async throws -> TenantRecord {
        let name = try Self.validateDisplayName(displayName)
        let limit = try Self.validateTokenLimit(tokenLimit ?? Self.defaultTokenLimit)
        let id = UUID()
        let schema = TenantSchema(tenantID: id)
        return try await self.pool.transaction { transaction in
            let row = try await transaction.query(
                """
                INSERT INTO vpp_control.tenants
                    (id, display_name, token_limit, organization_created_at, device_group_assignment, schema_name, role_name)
                VALUES (\(id), \(name), \(limit), coalesce(\(organizationCreatedAt), clock_timestamp()),
                        \(deviceGroupAssignment), \(schema.schemaName), \(schema.roleName))
                RETURNING \(unescaped: Self.columns)
                """
            ).single()
            var tenant = try Self.decode(row)
            // C3: the tenant's own role owns its own schema; nothing else is granted to it.
            try await transaction.simpleQuery(
                """
                CREATE ROLE \(schema.quotedRole) NOLOGIN NOINHERIT;
                GRANT \(schema.quotedRole) TO CURRENT_USER;
                CREATE SCHEMA \(schema.quotedSchema) AUTHORIZATION \(schema.quotedRole);
                REVOKE ALL ON SCHEMA \(schema.quotedSchema) FROM PUBLIC;
                """
            )
            try await Migrator.applyTenantMigrations(transaction, schema: schema, from: 0)
            tenant.schemaVersion = Migrator.latestTenantVersion
            return tenant
        }
    }

    public func get(_ id: UUID) async throws -> TenantRecord {
        let rows = try await self.pool.query(
            "SELECT \(unescaped: Self.columns) FROM vpp_control.tenants WHERE id = \(id)"
        )
        guard let row = rows.first else { throw StorageError.notFound("No tenant with id \(id).") }
        return try Self.decode(row)
    }

    /// Every active tenant's id (for maintenance that visits each tenant's schema).
    public func activeIDs() async throws -> [UUID] {
        try await self.pool.query("SELECT id FROM vpp_control.tenants WHERE state = 'active' ORDER BY id").map {
            try $0.decode(UUID.self, at: 0)
        }
    }

    /// One page of tenants in creation order, optionally filtered.
    public func list(
        pageSize: Int,
        after token: PageToken?,
        nameContains: String?,
        state: TenantRecord.State?
    ) async throws -> (tenants: [TenantRecord], next: PageToken?) {
        let cursor = try CreationCursor(token)
        let pattern = nameContains.map { "%" + Self.escapeLike($0) + "%" }
        let rows = try await self.pool.query(
            """
            SELECT \(unescaped: Self.columns), \(unescaped: CreationCursor.microsColumn)
            FROM vpp_control.tenants
            WHERE (\(cursor?.id)::uuid IS NULL
                   OR (created_at, id) > ('epoch'::timestamptz + \(cursor?.micros)::bigint * interval '1 microsecond',
                                         \(cursor?.id)::uuid))
              AND (\(pattern)::text IS NULL OR display_name ILIKE \(pattern) ESCAPE '\\')
              AND (\(state?.rawValue)::text IS NULL OR state = \(state?.rawValue))
            ORDER BY created_at, id
            LIMIT \(pageSize + 1)
            """
        )
        let (tenants, next) = try CreationCursor.page(rows, pageSize: pageSize, decode: Self.decode, id: \.id)
        return (tenants, next)
    }

    static func escapeLike(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
    }

    /// Changes the given fields only.
    public func update(
        _ id: UUID,
        displayName: String?,
        tokenLimit: Int?,
        deviceGroupAssignment: Bool?
    ) async throws -> TenantRecord {
        let name = try displayName.map(Self.validateDisplayName)
        let limit = try tokenLimit.map(Self.validateTokenLimit)
        let rows = try await self.pool.query(
            """
            UPDATE vpp_control.tenants SET
                display_name = coalesce(\(name), display_name),
                token_limit = coalesce(\(limit), token_limit),
                device_group_assignment = coalesce(\(deviceGroupAssignment), device_group_assignment),
                updated_at = clock_timestamp()
            WHERE id = \(id)
            RETURNING \(unescaped: Self.columns)
            """
        )
        guard let row = rows.first else { throw StorageError.notFound("No tenant with id \(id).") }
        return try Self.decode(row)
    }

    public func setState(_ id: UUID, _ state: TenantRecord.State, reason: String) async throws -> TenantRecord {
        let rows = try await self.pool.query(
            """
            UPDATE vpp_control.tenants SET state = \(state.rawValue), suspended_reason = \(reason),
                updated_at = clock_timestamp()
            WHERE id = \(id)
            RETURNING \(unescaped: Self.columns)
            """
        )
        guard let row = rows.first else { throw StorageError.notFound("No tenant with id \(id).") }
        return try Self.decode(row)
    }

    /// Drops the tenant's schema (everything it owns) and its role, and deletes its row and keys.
    public func delete(_ id: UUID) async throws {
        try await self.pool.transaction { transaction in
            let rows = try await transaction.query(
                "SELECT schema_name FROM vpp_control.tenants WHERE id = \(id) FOR UPDATE"
            )
            guard let row = rows.first else { throw StorageError.notFound("No tenant with id \(id).") }
            let schema = try TenantSchema(validatingSchemaName: try row.decode(String.self, at: 0), tenantID: id)
            try await transaction.simpleQuery(
                """
                DROP SCHEMA IF EXISTS \(schema.quotedSchema) CASCADE;
                DROP OWNED BY \(schema.quotedRole) CASCADE;
                DROP ROLE IF EXISTS \(schema.quotedRole);
                """
            )
            try await transaction.query("DELETE FROM vpp_control.tenants WHERE id = \(id)")
        }
        self.logger.notice("Tenant deleted", metadata: [LogKey.tenantID: "\(id)"])
    }
}
