import Foundation
import Testing
import VPPProto
import VPPTesting

@Suite("Names full of SQL reach the database only as values")
struct HostileNameTests {
    static let names = [
        "Robert'); DROP TABLE vpp_control.tenants; --",
        "\"; DROP SCHEMA vpp_control CASCADE; --",
        "x' OR '1'='1",
        "$1 $2 ::text",
        "back\\slash \\' quote",
        "ünïcödé 🎒 <script>alert(1)</script>",
        "%_%",
    ]

    @Test("tenant and key names with quotes, semicolons and SQL are stored exactly and run nothing", arguments: names)
    func hostileName(_ name: String) async throws {
        let server = try await TestVPPServer.start(prefix: "hostile")
        let client = server.operatorClient()
        let (tenant, _) = try await server.createTenant(name) { $0.initialKeyName = name }
        #expect(tenant.displayName == name.trimmingCharacters(in: .whitespacesAndNewlines))
        let fetched = try await client.call(Operator.GetTenant.self, VppV1.GetTenantRequest(tenant.id))
        #expect(fetched.displayName == tenant.displayName)
        var keys = VppV1.ListApiKeysRequest()
        keys.tenantId = tenant.id
        #expect(try await client.call(Operator.ListApiKeys.self, keys).keys.map(\.name) == [name])
        var filter = VppV1.ListTenantsRequest()
        filter.nameContains = name
        #expect(try await client.call(Operator.ListTenants.self, filter).tenants.map(\.id) == [tenant.id])
        // The control schema is intact.
        #expect(
            try await server.pool.query("SELECT count(*) FROM vpp_control.tenants").single().decode(Int.self, at: 0)
                == 1
        )
        await client.close()
        await server.stop()
    }
}
