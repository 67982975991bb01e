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
        // Built from the UUID's bytes: Foundation's replacingOccurrences cost 3% of a tenant read's CPU (perf).
        let hex = withUnsafeBytes(of: tenantID.uuid) { bytes in
            String(unsafeUninitializedCapacity: 32) { buffer in
                let digits = Array("0123456789abcdef".utf8)
                for (index, byte) in bytes.enumerated() {
                    buffer[2 * index] = digits[Int(byte >> 4)]
                    buffer[2 * index + 1] = digits[Int(byte & 0x0F)]
                }
                return 32
            }
        }
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

    /// The tenant a well-formed schema name belongs to (a NOTIFY payload names schemas), or nil.
    public static func tenantID(fromSchemaName name: String) -> UUID? {
        guard Self.isWellFormed(name) else { return nil }
        let hex = Array(name.dropFirst(6))
        let dashed =
            String(hex[0..<8]) + "-" + String(hex[8..<12]) + "-" + String(hex[12..<16]) + "-"
            + String(hex[16..<20]) + "-" + String(hex[20..<32])
        return UUID(uuidString: dashed)
    }

    static func isWellFormed(_ name: String) -> Bool {
        name.count == 38 && name.hasPrefix("vpp_t_")
            && name.dropFirst(6).allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
    }

    /// Scopes the rest of `transaction` to this tenant (C3): as its own role, with its schema as the search path.
    func enter(_ transaction: PostgresTransaction) async throws {
        try await transaction.simpleQuery(self.scopeStatements.joined(separator: "; "))
    }

    /// The statements that scope a transaction to this tenant, one by one (for a pipelined read).
    var scopeStatements: [String] {
        ["SET LOCAL ROLE \(self.quotedRole)", "SET LOCAL search_path TO \(self.quotedSchema)"]
    }

    /// The tenant's role set for the database session rather than one transaction (for `PostgresPool.scopedRead`,
    /// whose queries name the schema themselves: see `Storage.readInTenant`).
    var sessionScopeStatements: [String] {
        ["SET ROLE \(self.quotedRole)"]
    }

    public var quotedSchema: String { (try? quoteIdentifier(self.schemaName)) ?? "\"invalid\"" }
    public var quotedRole: String { (try? quoteIdentifier(self.roleName)) ?? "\"invalid\"" }
}
