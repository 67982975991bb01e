public import Foundation
public import Logging
import VPPLogKeys
public import VPPPostgres

/// Brings the control schema and every tenant schema up to date.
///
/// Safe to run from several servers at once: the control schema migrates under a transaction-scoped advisory lock,
/// and each tenant schema under a lock of its own, re-reading its version once the lock is held. Running it twice
/// changes nothing.
public struct Migrator: Sendable {
    /// The advisory lock key of the control schema's migrations ("vppctl01" as an integer; any fixed value works).
    static let controlLockKey: Int64 = 0x7670_7063_746C_3031

    let pool: PostgresPool
    let logger: Logger

    public init(pool: PostgresPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    public static var latestControlVersion: Int { ControlMigrations.all.latestVersion }
    public static var latestTenantVersion: Int { TenantMigrations.all.latestVersion }

    /// Migrates the control schema. Returns the versions applied (empty when it was current).
    @discardableResult
    public func migrateControl() async throws -> [Int] {
        try await self.pool.transaction { transaction in
            try await transaction.query("SELECT pg_advisory_xact_lock(\(Self.controlLockKey))")
            try await transaction.simpleQuery(
                """
                CREATE SCHEMA IF NOT EXISTS vpp_control;
                REVOKE ALL ON SCHEMA vpp_control FROM PUBLIC;
                CREATE TABLE IF NOT EXISTS vpp_control.schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
                );
                """
            )
            let current = try await transaction.query(
                "SELECT coalesce(max(version), 0) FROM vpp_control.schema_migrations"
            )
            .single().decode(Int.self, at: 0)
            var applied: [Int] = []
            for migration in ControlMigrations.all where migration.version > current {
                try await transaction.simpleQuery(migration.sql)
                try await transaction.query(
                    "INSERT INTO vpp_control.schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))"
                )
                applied.append(migration.version)
                self.logger.info(
                    "Applied control schema migration",
                    metadata: [LogKey.version: "\(migration.version)", LogKey.name: "\(migration.name)"]
                )
            }
            return applied
        }
    }

    /// Migrates every tenant schema that is behind, `concurrency` at a time. Returns how many were migrated.
    @discardableResult
    public func migrateTenants(concurrency: Int) async throws -> Int {
        let latest = Self.latestTenantVersion
        let behind = try await self.pool.query(
            "SELECT id FROM vpp_control.tenants WHERE schema_version < \(latest) ORDER BY id"
        ).map { try $0.decode(UUID.self, at: 0) }
        guard !behind.isEmpty else { return 0 }
        self.logger.info(
            "Migrating tenant schemas",
            metadata: [LogKey.count: "\(behind.count)", LogKey.toVersion: "\(latest)"]
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            var iterator = behind.makeIterator()
            for _ in 0..<max(1, concurrency) {
                guard let tenantID = iterator.next() else { break }
                group.addTask { try await self.migrateTenant(tenantID) }
            }
            while try await group.next() != nil {
                if let tenantID = iterator.next() {
                    group.addTask { try await self.migrateTenant(tenantID) }
                }
            }
        }
        return behind.count
    }

    /// Migrates one tenant's schema in its own transaction, under the tenant's lock.
    func migrateTenant(_ tenantID: UUID) async throws {
        try await self.pool.transaction { transaction in
            let schema = TenantSchema(tenantID: tenantID)
            try await transaction.query("SELECT pg_advisory_xact_lock(hashtextextended(\(schema.schemaName), 0))")
            let rows = try await transaction.query(
                "SELECT schema_version FROM vpp_control.tenants WHERE id = \(tenantID) FOR UPDATE"
            )
            guard let row = rows.first else { return }  // deleted meanwhile
            try await Self.applyTenantMigrations(
                transaction,
                schema: schema,
                from: try row.decode(Int.self, at: 0)
            )
        }
    }

    /// Applies the tenant migrations above `version` as the tenant's role, and records the new version both in the
    /// tenant's schema and in the control schema (where start-up reads it without visiting every schema).
    static func applyTenantMigrations(_ transaction: PostgresTransaction, schema: TenantSchema, from version: Int)
        async throws
    {
        let pending = TenantMigrations.all.filter { $0.version > version }
        guard !pending.isEmpty else { return }
        try await schema.enter(transaction)
        for migration in pending {
            try await transaction.simpleQuery(migration.sql)
        }
        try await transaction.simpleQuery("RESET ROLE; SET LOCAL search_path TO pg_catalog")
        try await transaction.query(
            "UPDATE vpp_control.tenants SET schema_version = \(pending.latestVersion) WHERE id = \(schema.tenantID)"
        )
    }

    /// The schema versions in force: the control schema's and every tenant's.
    public func status() async throws -> MigrationStatus {
        let control =
            try await self.pool.query(
                """
                SELECT coalesce((SELECT max(version) FROM vpp_control.schema_migrations), 0)
                WHERE to_regclass('vpp_control.schema_migrations') IS NOT NULL
                """
            ).first.map { try $0.decode(Int.self, at: 0) } ?? 0
        var tenants: [MigrationStatus.TenantVersion] = []
        if control > 0 {
            tenants = try await self.pool.query(
                "SELECT id, schema_name, schema_version FROM vpp_control.tenants ORDER BY created_at, id"
            ).map { row in
                MigrationStatus.TenantVersion(
                    tenantID: try row.decode(UUID.self, at: 0),
                    schemaName: try row.decode(String.self, at: 1),
                    version: try row.decode(Int.self, at: 2)
                )
            }
        }
        return MigrationStatus(
            controlVersion: control,
            latestControlVersion: Self.latestControlVersion,
            tenants: tenants,
            latestTenantVersion: Self.latestTenantVersion
        )
    }
}

public struct MigrationStatus: Sendable {
    public struct TenantVersion: Sendable {
        public var tenantID: UUID
        public var schemaName: String
        public var version: Int
    }

    public var controlVersion: Int
    public var latestControlVersion: Int
    public var tenants: [TenantVersion]
    public var latestTenantVersion: Int

    public var tenantsBehind: Int { self.tenants.filter { $0.version < self.latestTenantVersion }.count }
    public var isCurrent: Bool { self.controlVersion == self.latestControlVersion && self.tenantsBehind == 0 }
}
