import Foundation
import Testing
import VPPStorage

/// C3: a tenant's schema and role names come from its UUID alone (built from the UUID's bytes since the read path
/// was profiled; these pin the result to the documented form).
@Suite("Tenant schema names")
struct TenantSchemaNameTests {
    @Test(arguments: [
        "00000000-0000-0000-0000-000000000000", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
        "0B6F3C52-1D2E-4F9A-8C3B-5E6D7F8A9B0C", "7f1c2a9e-4b7d-4c1e-9a51-000000000042",
    ])
    func theNameIsVppTAndTheLowercaseHexOfTheUUID(text: String) throws {
        let id = try #require(UUID(uuidString: text))
        let expected = "vpp_t_" + id.uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let schema = TenantSchema(tenantID: id)
        #expect(schema.schemaName == expected)
        #expect(schema.roleName == expected)
        #expect(schema.quotedSchema == "\"\(expected)\"" || schema.quotedSchema == expected)
        #expect(throws: Never.self) { try TenantSchema(validatingSchemaName: expected, tenantID: id) }
    }

    @Test func randomUUIDsGiveTheSameNameAsTheTextForm() {
        for _ in 0..<1000 {
            let id = UUID()
            #expect(TenantSchema(tenantID: id).schemaName == "vpp_t_" + id.uuidString.lowercased().filter { $0 != "-" })
        }
    }
}
