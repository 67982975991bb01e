public import Foundation
public import VPPPostgres

/// The PostgreSQL names of one tenant: its schema and its role.
///
/// This is the only place a tenant's schema or role name is made. Names come from the tenant's UUID (never from user
/// input), are checked against a strict pattern, and are quoted by `quoteIdentifier` before they enter SQL text.
public struct TenantSchema: Sendable, Hashable {
    public let tenantID: UUID
    /// `vpp_t_` and the UUID's 32 hex digits.
    public let schemaName: String
    /// The role that owns the schema; tenant transactions run as it, so they cannot read any other schema.
    public let roleName: String

    public init(tenantID: UUID) {
        self.tenantID = tenantID
        let hex = tenantID.uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        self.schemaName = "vpp_t_" + hex
        self.roleName = "vpp_t_" + hex
    }

    /// Re-checks a name read back from the database before it is used in SQL text.
    public init(validatingSchemaName name: String, tenantID: UUID) throws {
        let expected = TenantSchema(tenantID: tenantID)
        guard name == expected.schemaName, Self.isWellFormed(name) else {
            throw StorageError.internalInconsistency("tenant \(tenantID) has an unexpected schema name")
        }
        self = expected
    }

    static func isWellFormed(_ name: String) -> Bool {
        name.count == 38 && name.hasPrefix("vpp_t_")
            && name.dropFirst(6).allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
    }

    /// Scopes the rest of `transaction` to this tenant (C3): as its own role, with its schema as the search path.
    func enter(_ transaction: PostgresTransaction) async throws {
        try await transaction.simpleQuery("SET LOCAL ROLE \(self.quotedRole); SET LOCAL search_path TO \(self.quotedSchema)")
    }

    public var quotedSchema: String { (try? quoteIdentifier(self.schemaName)) ?? "\"invalid\"" }
    public var quotedRole: String { (try? quoteIdentifier(self.roleName)) ?? "\"invalid\"" }
}
