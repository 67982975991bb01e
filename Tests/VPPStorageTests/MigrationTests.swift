import Foundation
import Logging
import Testing
import VPPPostgres
import VPPProto
import VPPStorage
import VPPTesting

@Suite("Migrations")
struct MigrationTests {
    private func storage(_ configuration: PostgresConfiguration) -> (PostgresPool, Storage) {
        var logger = Logger(label: "test.migrations")
        logger.logLevel = .critical
        let pool = PostgresPool(configuration: configuration, logger: logger)
        return (pool, Storage(pool: pool, logger: logger))
    }

    /// Every table and column of the database, to compare before and after.
    private func catalog(_ pool: PostgresPool) async throws -> [String] {
        try await pool.query(
            """
            SELECT table_schema || '.' || table_name || '.' || column_name || ':' || data_type
            FROM information_schema.columns
            WHERE table_schema LIKE 'vpp%'
            ORDER BY 1
            """
        ).map { try $0.decode(String.self, at: 0) }
    }

    @Test("running the migrations twice changes nothing")
    func idempotent() async throws {
        let configuration = try await TestPostgres.makeDatabase(prefix: "migrate_twice")
        let (pool, storage) = self.storage(configuration)
        try await storage.migrate(concurrency: 2)
        _ = try await storage.tenants.create(
            displayName: "one",
            tokenLimit: nil,
            organizationCreatedAt: nil,
            deviceGroupAssignment: false
        )
        let before = try await self.catalog(pool)
        #expect(try await storage.migrator.migrateControl().isEmpty)
        #expect(try await storage.migrator.migrateTenants(concurrency: 2) == 0)
        #expect(try await self.catalog(pool) == before)
        let status = try await storage.migrator.status()
        #expect(status.isCurrent)
        #expect(status.tenants.count == 1)
        await pool.shutdown()
    }

    @Test("two servers migrating one database at once both come up, and every tenant is migrated once")
    func concurrentServers() async throws {
        let configuration = try await TestPostgres.makeDatabase(prefix: "migrate_race")
        let (setupPool, setup) = self.storage(configuration)
        try await setup.migrate(concurrency: 2)
        var tenants: [UUID] = []
        for index in 0..<12 {
            tenants.append(
                try await setup.tenants.create(
                    displayName: "t\(index)",
                    tokenLimit: nil,
                    organizationCreatedAt: nil,
                    deviceGroupAssignment: false
                ).id
            )
        }
        // Put every tenant schema back to version 0, as if they were created by an older server.
        for id in tenants {
            let schema = TenantSchema(tenantID: id)
            try await setupPool.simpleQuery(
                """
                DROP SCHEMA \(schema.quotedSchema) CASCADE;
                CREATE SCHEMA \(schema.quotedSchema) AUTHORIZATION \(schema.quotedRole);
                REVOKE ALL ON SCHEMA \(schema.quotedSchema) FROM PUBLIC;
                """
            )
        }
        try await setupPool.query("UPDATE vpp_control.tenants SET schema_version = 0")
        await setupPool.shutdown()

        let (poolA, serverA) = self.storage(configuration)
        let (poolB, serverB) = self.storage(configuration)
        async let a: Void = serverA.migrate(concurrency: 3)
        async let b: Void = serverB.migrate(concurrency: 3)
        _ = try await (a, b)
        let status = try await serverA.migrator.status()
        #expect(status.isCurrent)
        #expect(status.tenants.count == 12)
        for id in tenants {
            let count = try await serverB.withTenant(id) { transaction in
                try await transaction.query("SELECT count(*) FROM audit_events").single().decode(Int.self, at: 0)
            }
            #expect(count == 0)
        }
        await poolA.shutdown()
        await poolB.shutdown()
    }

    @Test("a new tenant's schema is created at the current version; GetMigrationStatus reports it")
    func statusOverRPC() async throws {
        let server = try await TestVPPServer.start(prefix: "migstatus")
        let (tenant, _) = try await server.createTenant("fresh")
        let status = try await server.operatorClient().call(
            Operator.GetMigrationStatus.self,
            VppV1.GetMigrationStatusRequest()
        )
        #expect(status.control?.version == status.control?.latestVersion)
        #expect(status.tenants.map(\.owner) == [tenant.id])
        #expect(status.tenantsBehind == 0)
        await server.stop()
    }
}
