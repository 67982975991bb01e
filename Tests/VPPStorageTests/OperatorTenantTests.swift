import Foundation
import Testing
import VPPClient
import VPPPostgres
import VPPProto
import VPPTesting
import VPPWire

typealias Operator = VppV1.OperatorService

@Suite("Operators provision tenants over RPC")
struct OperatorTenantTests {
    @Test("a tenant is created with the default token limit of 256 (R2, C5), read back, updated, and listed")
    func tenantLifecycle() async throws {
        let server = try await TestVPPServer.start(prefix: "lifecycle")
        let client = server.operatorClient()
        var create = VppV1.CreateTenantRequest()
        create.displayName = "  Acme Schools  "
        let created = try #require(try await client.call(Operator.CreateTenant.self, create).tenant)
        #expect(created.displayName == "Acme Schools")
        #expect(created.tokenLimit == 256)
        #expect(created.state == .active)
        #expect(created.schemaVersion >= 1)

        let fetched = try await client.call(Operator.GetTenant.self, VppV1.GetTenantRequest(created.id))
        #expect(fetched == created)

        var update = VppV1.UpdateTenantRequest()
        update.tenantId = created.id
        var limit = VppV1.UInt32Value()
        limit.value = 3
        update.tokenLimit = limit
        let updated = try await client.call(Operator.UpdateTenant.self, update)
        #expect(updated.tokenLimit == 3)
        #expect(updated.displayName == "Acme Schools")  // absent fields stay as they were

        let listed = try await client.call(Operator.ListTenants.self, VppV1.ListTenantsRequest())
        #expect(listed.tenants.map(\.id) == [created.id])
        await client.close()
        await server.stop()
    }

    @Test("R14: device groups are allowed for tenants created after January 2017, or when an operator enables them")
    func deviceGroupRule() async throws {
        let server = try await TestVPPServer.start(prefix: "r14")
        let client = server.operatorClient()
        func create(_ name: String, createdAt: Date?, enabled: Bool) async throws -> VppV1.Tenant {
            var request = VppV1.CreateTenantRequest()
            request.displayName = name
            if let createdAt {
                var timestamp = VppV1.Timestamp()
                timestamp.seconds = Int64(createdAt.timeIntervalSince1970)
                request.createdAt = timestamp
            }
            var features = VppV1.TenantFeatures()
            features.deviceGroupAssignment = enabled
            request.features = features
            return try #require(try await client.call(Operator.CreateTenant.self, request).tenant)
        }
        // 2015
        let old = try await create("old", createdAt: Date(timeIntervalSince1970: 1_420_070_400), enabled: false)
        let oldEnabled = try await create(
            "old, enabled",
            createdAt: Date(timeIntervalSince1970: 1_420_070_400),
            enabled: true
        )
        // 2019
        let recent = try await create("recent", createdAt: Date(timeIntervalSince1970: 1_546_300_800), enabled: false)
        let now = try await create("now", createdAt: nil, enabled: false)
        #expect(old.deviceGroupAssignmentAllowed == false)
        #expect(oldEnabled.deviceGroupAssignmentAllowed == true)
        #expect(recent.deviceGroupAssignmentAllowed == true)
        #expect(now.deviceGroupAssignmentAllowed == true)
        #expect(old.createdAt?.seconds == 1_420_070_400)

        // An operator enables it later for the old tenant.
        var update = VppV1.UpdateTenantRequest()
        update.tenantId = old.id
        var features = VppV1.TenantFeatures()
        features.deviceGroupAssignment = true
        update.features = features
        #expect(try await client.call(Operator.UpdateTenant.self, update).deviceGroupAssignmentAllowed == true)
        await client.close()
        await server.stop()
    }

    @Test("listing pages through every tenant exactly once, and filters by name and state")
    func paging() async throws {
        let server = try await TestVPPServer.start(prefix: "paging")
        let client = server.operatorClient()
        var ids: [String] = []
        for index in 0..<7 {
            ids.append(try await server.createTenant("tenant \(index)\(index == 3 ? " 100%_off" : "")").tenant.id)
        }
        var seen: [String] = []
        var request = VppV1.ListTenantsRequest()
        var page = VppV1.PageRequest()
        page.pageSize = 3
        request.page = page
        var pages = 0
        repeat {
            let response = try await client.call(Operator.ListTenants.self, request)
            seen += response.tenants.map(\.id)
            request.page?.pageToken = response.page?.nextPageToken ?? ""
            pages += 1
        } while !(request.page?.pageToken.isEmpty ?? true)
        #expect(seen == ids)
        #expect(pages == 3)

        // LIKE wildcards in the filter are taken literally.
        var filtered = VppV1.ListTenantsRequest()
        filtered.nameContains = "100%_"
        #expect(try await client.call(Operator.ListTenants.self, filtered).tenants.map(\.id) == [ids[3]])

        var suspend = VppV1.SuspendTenantRequest()
        suspend.tenantId = ids[5]
        _ = try await client.call(Operator.SuspendTenant.self, suspend)
        var suspendedOnly = VppV1.ListTenantsRequest()
        suspendedOnly.state = .suspended
        #expect(try await client.call(Operator.ListTenants.self, suspendedOnly).tenants.map(\.id) == [ids[5]])
        await client.close()
        await server.stop()
    }

    @Test("bad input gets INVALID_ARGUMENT or NOT_FOUND, with the field named")
    func badInput() async throws {
        let server = try await TestVPPServer.start(prefix: "badinput")
        let client = server.operatorClient()
        await expectRPCError(.invalidArgument) {
            _ = try await client.call(Operator.CreateTenant.self, VppV1.CreateTenantRequest())
        }
        var tooLong = VppV1.CreateTenantRequest()
        tooLong.displayName = String(repeating: "x", count: 201)
        await expectRPCError(.invalidArgument) { _ = try await client.call(Operator.CreateTenant.self, tooLong) }
        var control = VppV1.CreateTenantRequest()
        control.displayName = "bad\u{1B}[31mname"
        await expectRPCError(.invalidArgument) { _ = try await client.call(Operator.CreateTenant.self, control) }
        // A NUL byte in a name (hand-encoded: CreateTenantRequest{display_name: "a\0b"}) is refused, not cut short.
        await expectRPCError(.invalidArgument) {
            _ = try await client.unaryBytes(
                path: Operator.CreateTenant.path,
                request: [0x0A, 0x03, 0x61, 0x00, 0x62],
                timeout: .seconds(10)
            )
        }
        #expect(try await client.call(Operator.ListTenants.self, VppV1.ListTenantsRequest()).tenants.isEmpty)
        var bigLimit = VppV1.CreateTenantRequest()
        bigLimit.displayName = "big"
        bigLimit.tokenLimit = 1_000_000
        await expectRPCError(.invalidArgument) { _ = try await client.call(Operator.CreateTenant.self, bigLimit) }
        let malformed = await expectRPCError(.invalidArgument) {
            _ = try await client.call(Operator.GetTenant.self, VppV1.GetTenantRequest("not-a-uuid'; --"))
        }
        #expect(malformed?.details.first?.field == "tenant_id")
        await expectRPCError(.notFound) {
            _ = try await client.call(Operator.GetTenant.self, VppV1.GetTenantRequest(UUID().uuidString))
        }
        var badPage = VppV1.ListTenantsRequest()
        var page = VppV1.PageRequest()
        page.pageToken = "garbage!"
        badPage.page = page
        await expectRPCError(.invalidArgument) { _ = try await client.call(Operator.ListTenants.self, badPage) }
        await client.close()
        await server.stop()
    }

    @Test("tenant keys cannot call operator methods")
    func tenantKeyIsNotOperator() async throws {
        let server = try await TestVPPServer.start(prefix: "tenantkey")
        let (_, key) = try await server.createTenant("t")
        let client = server.client(key: key)
        await expectRPCError(.permissionDenied) {
            _ = try await client.call(Operator.ListTenants.self, VppV1.ListTenantsRequest())
        }
        await client.close()
        await server.stop()
    }

    @Test("deleting a tenant needs confirmation, drops its schema and role, and its keys stop working")
    func deleteTenant() async throws {
        let server = try await TestVPPServer.start(prefix: "delete")
        let client = server.operatorClient()
        let (tenant, key) = try await server.createTenant("doomed")
        let tenantClient = server.client(key: key)
        _ = try await tenantClient.call(VppV1.AuditService.ListAuditEvents.self, VppV1.ListAuditEventsRequest())

        var delete = VppV1.DeleteTenantRequest()
        delete.tenantId = tenant.id
        await expectRPCError(.invalidArgument) { _ = try await client.call(Operator.DeleteTenant.self, delete) }
        delete.confirm = tenant.id
        _ = try await client.call(Operator.DeleteTenant.self, delete)

        await expectRPCError(.notFound) {
            _ = try await client.call(Operator.GetTenant.self, VppV1.GetTenantRequest(tenant.id))
        }
        let schemaName = "vpp_t_" + tenant.id.replacingOccurrences(of: "-", with: "")
        #expect(try await server.pool.query("SELECT 1 FROM pg_namespace WHERE nspname = \(schemaName)").isEmpty)
        #expect(try await server.pool.query("SELECT 1 FROM pg_roles WHERE rolname = \(schemaName)").isEmpty)
        // The open connection's next call is refused, and so is a new connection.
        await expectRPCError(.unauthenticated) {
            _ = try await tenantClient.call(VppV1.AuditService.ListAuditEvents.self, VppV1.ListAuditEventsRequest())
        }
        await expectRPCError(.unauthenticated) { _ = try await server.client(key: key).connect() }
        await client.close()
        await server.stop()
    }

    @Test("every mutating operator call is audited with its result, failures included")
    func operatorAudit() async throws {
        let server = try await TestVPPServer.start(prefix: "audit")
        let client = server.operatorClient()
        let (tenant, _) = try await server.createTenant("audited")
        var delete = VppV1.DeleteTenantRequest()
        delete.tenantId = tenant.id
        _ = try? await client.call(Operator.DeleteTenant.self, delete)  // refused: no confirmation
        let events = try await client.call(
            Operator.ListOperatorAuditEvents.self,
            VppV1.ListOperatorAuditEventsRequest()
        ).events
        // Newest first: the refused delete, then the create.
        #expect(events.map(\.method) == [Operator.DeleteTenant.path, Operator.CreateTenant.path])
        #expect(events.map(\.result) == ["INVALID_ARGUMENT", "OK"])
        #expect(events.allSatisfy { $0.target == "tenant:\(tenant.id)" })
        #expect(events.allSatisfy { $0.principal.hasPrefix("operator:") })
        await client.close()
        await server.stop()
    }
}
