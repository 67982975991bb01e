import Foundation
import Testing
import VPPPostgres
import VPPProto
import VPPStorage
import VPPTesting

@Suite("Tenants are isolated in their own schemas (C3)")
struct TenantIsolationTests {
    private func audit(_ target: String) -> AuditRecord {
        AuditRecord(principal: "tenant:test", method: "/test", target: target, result: "OK", callID: "1", message: "")
    }

    @Test("a tenant's transaction runs as its own role and cannot read another tenant's schema, even by name")
    func roleCannotReachOtherSchemas() async throws {
        let server = try await TestVPPServer.start(prefix: "isolation")
        let a = UUID(uuidString: try await server.createTenant("A").tenant.id)!
        let b = UUID(uuidString: try await server.createTenant("B").tenant.id)!
        let schemaB = TenantSchema(tenantID: b)
        try await server.storage.recordTenantAudit(self.audit("secret of B"), tenantID: b)

        let whoAmI = try await server.storage.withTenant(a) { transaction in
            try await transaction.query("SELECT current_user, current_schema()").single()
        }
        #expect(try whoAmI.decode(String.self, at: 0) == TenantSchema(tenantID: a).roleName)
        #expect(try whoAmI.decode(String.self, at: 1) == TenantSchema(tenantID: a).schemaName)

        // Naming B's table explicitly from A's scope is refused by PostgreSQL itself.
        await #expect(throws: PostgresError.self) {
            try await server.storage.withTenant(a) { transaction in
                try await transaction.query("SELECT * FROM \(identifier: schemaB.schemaName).audit_events")
            }
        }
        // So is the control schema.
        await #expect(throws: PostgresError.self) {
            try await server.storage.withTenant(a) { transaction in
                try await transaction.query("SELECT * FROM vpp_control.api_keys")
            }
        }
        await server.stop()
    }

    @Test("a tenant's single-statement read runs as its own role, also when its role is kept from the read before")
    func readInTenantRunsAsTheTenant() async throws {
        let server = try await TestVPPServer.start(prefix: "isolation_read")
        let a = UUID(uuidString: try await server.createTenant("A").tenant.id)!
        let b = UUID(uuidString: try await server.createTenant("B").tenant.id)!
        let schemaA = TenantSchema(tenantID: a)
        let schemaB = TenantSchema(tenantID: b)
        try await server.storage.recordTenantAudit(self.audit("secret of B"), tenantID: b)

        for _ in 0..<3 {
            let whoAmI = try await server.storage.readInTenant(a) { schema in
                "SELECT current_user::text, \(schema)::text, count(*) FROM \(identifier: schema).audit_events"
            }.single()
            #expect(try whoAmI.decode(String.self, at: 0) == schemaA.roleName)
            #expect(try whoAmI.decode(String.self, at: 1) == schemaA.schemaName)
            // B's table, named from A's read, is refused by PostgreSQL itself.
            let error = await #expect(throws: PostgresError.self) {
                try await server.storage.readInTenant(a) { _ in
                    "SELECT * FROM \(identifier: schemaB.schemaName).audit_events"
                }
            }
            #expect(error?.sqlState == "42501")
        }
        // B reads its own.
        let own = try await server.storage.readInTenant(b) { schema in
            "SELECT current_user::text, count(*) FROM \(identifier: schema).audit_events"
        }.single()
        #expect(try own.decode(String.self, at: 0) == schemaB.roleName)
        #expect(try own.decode(Int.self, at: 1) == 1)
        await server.stop()
    }

    @Test("ids of one tenant find nothing in another tenant's scope")
    func idsDoNotCross() async throws {
        let server = try await TestVPPServer.start(prefix: "crossids")
        let a = UUID(uuidString: try await server.createTenant("A").tenant.id)!
        let b = UUID(uuidString: try await server.createTenant("B").tenant.id)!
        try await server.storage.recordTenantAudit(self.audit("event of A"), tenantID: a)
        let idOfA = try await server.storage.withTenant(a) { transaction in
            try await transaction.query("SELECT max(id) FROM audit_events").single().decode(Int64.self, at: 0)
        }
        let seenFromB = try await server.storage.withTenant(b) { transaction in
            try await transaction.query("SELECT id FROM audit_events WHERE id = \(idOfA)").count
        }
        #expect(seenFromB == 0)
        await server.stop()
    }

    @Test("a tenant's audit log over RPC shows its own events only")
    func auditLogIsPerTenant() async throws {
        let server = try await TestVPPServer.start(prefix: "auditrpc")
        let (tenantA, keyA) = try await server.createTenant("A")
        let (tenantB, keyB) = try await server.createTenant("B")
        try await server.storage.recordTenantAudit(self.audit("only A"), tenantID: UUID(uuidString: tenantA.id)!)
        try await server.storage.recordTenantAudit(self.audit("only B"), tenantID: UUID(uuidString: tenantB.id)!)
        let eventsA = try await server.client(key: keyA).call(
            VppV1.AuditService.ListAuditEvents.self,
            VppV1.ListAuditEventsRequest()
        )
        let eventsB = try await server.client(key: keyB).call(
            VppV1.AuditService.ListAuditEvents.self,
            VppV1.ListAuditEventsRequest()
        )
        #expect(eventsA.events.map(\.target) == ["only A"])
        #expect(eventsB.events.map(\.target) == ["only B"])
        await server.stop()
    }

    @Test("a suspended tenant's calls get FAILED_PRECONDITION until it is resumed")
    func suspendedTenant() async throws {
        let server = try await TestVPPServer.start(prefix: "suspend")
        let operatorClient = server.operatorClient()
        let (tenant, key) = try await server.createTenant("sleepy")
        let tenantClient = server.client(key: key)
        _ = try await tenantClient.call(VppV1.AuditService.ListAuditEvents.self, VppV1.ListAuditEventsRequest())

        var suspend = VppV1.SuspendTenantRequest()
        suspend.tenantId = tenant.id
        suspend.reason = "unpaid invoice"
        let suspended = try await operatorClient.call(Operator.SuspendTenant.self, suspend)
        #expect(suspended.state == .suspended)
        #expect(suspended.suspendedReason == "unpaid invoice")
        let error = await expectRPCError(.failedPrecondition) {
            _ = try await tenantClient.call(VppV1.AuditService.ListAuditEvents.self, VppV1.ListAuditEventsRequest())
        }
        #expect(error?.reason == "TENANT_SUSPENDED")

        var resume = VppV1.ResumeTenantRequest()
        resume.tenantId = tenant.id
        _ = try await operatorClient.call(Operator.ResumeTenant.self, resume)
        _ = try await tenantClient.call(VppV1.AuditService.ListAuditEvents.self, VppV1.ListAuditEventsRequest())
        await server.stop()
    }
}
