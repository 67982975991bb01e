public import Foundation
public import Logging
import VPPLogKeys
public import VPPPostgres

/// The storage layer's front door: the pool, the stores, tenant-scoped transactions, and the audit logs.
public final class Storage: Sendable {
    public let pool: PostgresPool
    public let tenants: TenantStore
    public let apiKeys: ApiKeyStore
    public let migrator: Migrator
    public let logger: Logger

    /// How long a tenant's state read from the database is trusted before it is read again. Changes made by this
    /// process are seen at once; changes made by another server within this time (or at once, through NOTIFY, once the
    /// daemon listens).
    public var tenantStateTTL: Duration { self.tenantStates.lifetime }
    private let tenantStates: ExpiringCache<UUID, TenantRecord.State>

    /// NOTIFY channel for changes of tenants and keys, so every server drops what it cached.
    public static let changesChannel = "vpp_control_changes"

    public init(pool: PostgresPool, logger: Logger, tenantStateTTL: Duration = .seconds(2)) {
        self.pool = pool
        self.logger = logger
        self.tenants = TenantStore(pool: pool, logger: logger)
        self.apiKeys = ApiKeyStore(pool: pool, logger: logger)
        self.migrator = Migrator(pool: pool, logger: logger)
        self.tenantStates = ExpiringCache(lifetime: tenantStateTTL)
    }

    // MARK: Tenant scope

    /// Runs `body` in a transaction scoped to one tenant: as the tenant's own role, with `search_path` set to its
    /// schema, so a query cannot reach another tenant's tables even by mistake (C3). A suspended tenant gets
    /// FAILED_PRECONDITION; an unknown one NOT_FOUND.
    public func withTenant<Result: Sendable>(
        _ tenantID: UUID,
        isolation: PostgresPool.IsolationLevel = .readCommitted,
        _ body: (PostgresTransaction) async throws -> Result
    ) async throws -> Result {
        try await self.requireActive(tenantID)
        return try await self.inTenantScope(tenantID, isolation: isolation, body)
    }

    /// A transaction scoped to the tenant, whatever its state.
    func inTenantScope<Result: Sendable>(
        _ tenantID: UUID,
        isolation: PostgresPool.IsolationLevel = .readCommitted,
        _ body: (PostgresTransaction) async throws -> Result
    ) async throws -> Result {
        let schema = TenantSchema(tenantID: tenantID)
        return try await self.pool.transaction(isolation: isolation) { transaction in
            try await schema.enter(transaction)
            return try await body(transaction)
        }
    }

    /// One read in the tenant's scope (C3: as its role, reading its schema), in a single round trip to the database,
    /// for the reads of tenant calls that need one statement (GetLicenseCounts, GetAsset). Same checks and errors as
    /// `withTenant`. (Reading the tenant's state in the same round trip instead of through the cache was measured too:
    /// one more statement for PostgreSQL to parse per call cost more than the cache's re-reads saved.)
    ///
    /// `query` gets the tenant's schema name and must name its tables with it (`\(identifier: schema).assets`): the
    /// read runs as the tenant's role but leaves the search path alone, because PostgreSQL plans a prepared statement
    /// again whenever the search path differs from the one it was planned under. The role is set for the database
    /// session and kept after the read (`PostgresPool.scopedRead`), so the next read of the same tenant on that
    /// connection is the query alone; the pool resets the role before any other use of the connection.
    public func readInTenant(_ tenantID: UUID, _ query: (_ schema: String) -> PostgresQuery) async throws
        -> PostgresRows
    {
        try await self.requireActive(tenantID)
        let schema = TenantSchema(tenantID: tenantID)
        return try await self.pool.scopedRead(
            scope: schema.schemaName,
            enter: schema.sessionScopeStatements,
            query(schema.schemaName)
        )
    }

    private static var suspended: StorageError {
        StorageError.failedPrecondition(
            "This tenant is suspended by the platform operator; its calls and syncs are stopped until it is resumed.",
            reason: "TENANT_SUSPENDED"
        )
    }

    /// Throws unless the tenant exists and is active.
    public func requireActive(_ tenantID: UUID) async throws {
        let state: TenantRecord.State
        switch self.tenantStates.lookup(tenantID) {
        case .value(let cached):
            state = cached
        case .read(let due, let claimed):
            // One query re-reads this tenant and every other cached tenant past half its lifetime: with 1,000 tenants
            // calling, a query per tenant every 2 s was up to 500 queries a second beside the calls.
            defer { if claimed { self.tenantStates.endRefresh() } }
            let rows = try await self.pool.query(
                "SELECT id, state FROM vpp_control.tenants WHERE id = ANY(\(due)::uuid[])"
            )
            var states: [UUID: TenantRecord.State] = [:]
            for row in rows {
                states[try row.decode(UUID.self, at: 0)] =
                    TenantRecord.State(rawValue: try row.decode(String.self, at: 1)) ?? .suspended
            }
            for id in due {
                if let found = states[id] { self.tenantStates.store(found, for: id) } else { self.forgetTenant(id) }
            }
            guard let found = states[tenantID] else {
                throw StorageError.notFound("The tenant of this key no longer exists.")
            }
            state = found
        }
        guard state == .active else { throw Self.suspended }
    }

    /// Drops what this process cached about a tenant (after a change here or a notification from another server).
    public func forgetTenant(_ tenantID: UUID) {
        self.tenantStates.remove(tenantID)
    }

    public func forgetAllTenants() {
        self.tenantStates.removeAll()
    }

    /// Tells every server that a tenant or key changed ("tenant:<id>" or "key:<id>").
    public func announceChange(_ payload: String) async {
        do {
            try await self.pool.notify(channel: Self.changesChannel, payload: payload)
        } catch {
            self.logger.warning("Could not announce a change to other servers", metadata: [LogKey.error: "\(error)"])
        }
    }

    // MARK: Audit

    public func recordOperatorAudit(_ record: AuditRecord) async throws {
        try await AuditLog.insert(record, into: .control, on: nil, pool: self.pool)
    }

    /// Records a tenant's audit event in the tenant's schema (in `transaction` when given, so it commits or rolls back
    /// with the change it describes).
    public func recordTenantAudit(_ record: AuditRecord, tenantID: UUID, in transaction: PostgresTransaction? = nil)
        async throws
    {
        if let transaction {
            try await AuditLog.insert(record, into: .tenant, on: transaction, pool: self.pool)
        } else {
            try await self.inTenantScope(tenantID) { transaction in
                try await AuditLog.insert(record, into: .tenant, on: transaction, pool: self.pool)
            }
        }
    }

    public func listOperatorAudit(
        target: String?,
        method: String?,
        pageSize: Int,
        after token: PageToken?
    ) async throws -> (records: [AuditRecord], next: PageToken?) {
        try await AuditLog.list(from: .control, target: target, method: method, pageSize: pageSize, after: token) {
            try await self.pool.query($0)
        }
    }

    public func listTenantAudit(
        tenantID: UUID,
        target: String?,
        method: String?,
        pageSize: Int,
        after token: PageToken?
    ) async throws -> (records: [AuditRecord], next: PageToken?) {
        try await self.withTenant(tenantID) { transaction in
            try await AuditLog.list(from: .tenant, target: target, method: method, pageSize: pageSize, after: token) {
                try await transaction.query($0)
            }
        }
    }

    // MARK: Platform

    /// This installation's identity at Apple (the `mdmInfo.id` every token is claimed with, R4), made once by the
    /// control schema's migration and shared by every server on the database.
    public func platformMDMID() async throws -> UUID {
        let rows = try await self.pool.query("SELECT mdm_id FROM vpp_control.platform")
        guard let row = rows.first else {
            throw StorageError.internalInconsistency("vpp_control.platform has no row; run the migrations")
        }
        return try row.decode(UUID.self, at: 0)
    }

    // MARK: Start-up

    /// Brings every schema up to date (control first, then the tenants, `concurrency` at a time).
    public func migrate(concurrency: Int) async throws {
        try await self.migrator.migrateControl()
        try await self.migrator.migrateTenants(concurrency: concurrency)
    }
}
