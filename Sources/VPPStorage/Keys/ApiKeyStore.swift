import Crypto
public import Foundation
public import Logging
public import VPPPostgres

public struct ApiKeyRecord: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case `operator`
        case tenant
    }

    public var id: UUID
    public var kind: Kind
    public var tenantID: UUID?
    public var name: String
    /// The key's first characters, to recognise it in a list; never enough to use it.
    public var prefix: String
    public var createdAt: Date
    public var revokedAt: Date?
    public var lastUsedAt: Date?
}

/// API keys: random secrets shown once, stored only as their SHA-256 (they carry 256 bits of entropy, so a slow
/// password hash would add nothing).
public struct ApiKeyStore: Sendable {
    let pool: PostgresPool
    let logger: Logger

    static let columns = "id, kind, tenant_id, name, prefix, created_at, revoked_at, last_used_at"

    static func decode(_ row: PostgresRow) throws -> ApiKeyRecord {
        ApiKeyRecord(
            id: try row.decode(UUID.self, at: 0),
            kind: ApiKeyRecord.Kind(rawValue: try row.decode(String.self, at: 1)) ?? .tenant,
            tenantID: try row.decode(UUID?.self, at: 2),
            name: try row.decode(String.self, at: 3),
            prefix: try row.decode(String.self, at: 4),
            createdAt: try row.decode(Date.self, at: 5),
            revokedAt: try row.decode(Date?.self, at: 6),
            lastUsedAt: try row.decode(Date?.self, at: 7)
        )
    }

    /// A new secret: a kind prefix and 32 random bytes in base64url (`vppo_…` operator, `vppt_…` tenant).
    static func generateSecret(kind: ApiKeyRecord.Kind) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let body = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return (kind == .operator ? "vppo_" : "vppt_") + body
    }

    static func hash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func validateName(_ name: String) throws -> String {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(trimmed.count) else {
            throw StorageError.invalidArgument("The key's name must be 1 to 200 characters.", field: "name")
        }
        return trimmed
    }

    /// Creates a key and returns it with its secret, which is never stored or shown again.
    /// - Parameter secret: a given secret (the bootstrap key from configuration); nil generates one.
    public func create(
        kind: ApiKeyRecord.Kind,
        tenantID: UUID?,
        name: String,
        secret givenSecret: String? = nil
    ) async throws -> (key: ApiKeyRecord, secret: String) {
        let name = try Self.validateName(name)
        let secret = givenSecret ?? Self.generateSecret(kind: kind)
        guard secret.count >= 32 else {
            throw StorageError.invalidArgument("An API key must be at least 32 characters.", field: "secret")
        }
        do {
            let row = try await self.pool.query(
                """
                INSERT INTO vpp_control.api_keys (id, kind, tenant_id, name, prefix, secret_sha256)
                VALUES (\(UUID()), \(kind.rawValue), \(tenantID), \(name), \(String(secret.prefix(9))), \(Self.hash(secret)))
                RETURNING \(unescaped: Self.columns)
                """
            ).single()
            return (try Self.decode(row), secret)
        } catch let error as PostgresError where error.kind == .foreignKeyViolation {
            throw StorageError.notFound("No tenant with id \(tenantID.map { "\($0)" } ?? "")).")
        } catch let error as PostgresError where error.kind == .uniqueViolation {
            throw StorageError.alreadyExists("That key is already in use; choose another.")
        }
    }

    /// The key a secret belongs to, if any (revoked ones included: the caller decides).
    public func find(secret: String) async throws -> ApiKeyRecord? {
        guard !secret.isEmpty, secret.utf8.count <= 512 else { return nil }
        let rows = try await self.pool.query(
            "SELECT \(unescaped: Self.columns) FROM vpp_control.api_keys WHERE secret_sha256 = \(Self.hash(secret))"
        )
        return try rows.first.map(Self.decode)
    }

    public func get(_ id: UUID) async throws -> ApiKeyRecord {
        let rows = try await self.pool.query(
            "SELECT \(unescaped: Self.columns) FROM vpp_control.api_keys WHERE id = \(id)"
        )
        guard let row = rows.first else { throw StorageError.notFound("No API key with id \(id).") }
        return try Self.decode(row)
    }

    /// Whether the key exists and is not revoked (checked before calls, so revocation reaches open connections).
    public func isActive(_ id: UUID) async throws -> Bool {
        let rows = try await self.pool.query(
            "SELECT 1 FROM vpp_control.api_keys WHERE id = \(id) AND revoked_at IS NULL"
        )
        return !rows.isEmpty
    }

    /// Which of `ids` are keys that exist and are not revoked: one query for many keys' re-checks.
    public func activeKeys(among ids: [UUID]) async throws -> Set<UUID> {
        let rows = try await self.pool.query(
            "SELECT id FROM vpp_control.api_keys WHERE id = ANY(\(ids)::uuid[]) AND revoked_at IS NULL"
        )
        return Set(try rows.map { try $0.decode(UUID.self, at: 0) })
    }

    public func markUsed(_ id: UUID) async throws {
        try await self.pool.query(
            """
            UPDATE vpp_control.api_keys SET last_used_at = clock_timestamp()
            WHERE id = \(id) AND (last_used_at IS NULL OR last_used_at < clock_timestamp() - interval '1 minute')
            """
        )
    }

    /// Operator keys (tenantID nil) or one tenant's keys, in creation order.
    public func list(
        tenantID: UUID?,
        includeRevoked: Bool,
        pageSize: Int,
        after token: PageToken?
    ) async throws -> (keys: [ApiKeyRecord], next: PageToken?) {
        let cursor = try CreationCursor(token)
        let rows = try await self.pool.query(
            """
            SELECT \(unescaped: Self.columns), \(unescaped: CreationCursor.microsColumn)
            FROM vpp_control.api_keys
            WHERE tenant_id IS NOT DISTINCT FROM \(tenantID)
              AND (\(includeRevoked) OR revoked_at IS NULL)
              AND (\(cursor?.id)::uuid IS NULL
                   OR (created_at, id) > ('epoch'::timestamptz + \(cursor?.micros)::bigint * interval '1 microsecond',
                                         \(cursor?.id)::uuid))
            ORDER BY created_at, id
            LIMIT \(pageSize + 1)
            """
        )
        let (keys, next) = try CreationCursor.page(rows, pageSize: pageSize, decode: Self.decode, id: \.id)
        return (keys, next)
    }

    /// Revokes a key (again: no change). Returns the key as it now is.
    public func revoke(_ id: UUID) async throws -> ApiKeyRecord {
        let rows = try await self.pool.query(
            """
            UPDATE vpp_control.api_keys SET revoked_at = coalesce(revoked_at, clock_timestamp())
            WHERE id = \(id)
            RETURNING \(unescaped: Self.columns)
            """
        )
        guard let row = rows.first else { throw StorageError.notFound("No API key with id \(id).") }
        return try Self.decode(row)
    }

    /// The ids of every key of one tenant, revoked ones included.
    public func ids(ofTenant tenantID: UUID) async throws -> [UUID] {
        try await self.pool.query("SELECT id FROM vpp_control.api_keys WHERE tenant_id = \(tenantID)")
            .map { try $0.decode(UUID.self, at: 0) }
    }

    public func countActiveOperatorKeys() async throws -> Int {
        try await self.pool.query(
            "SELECT count(*) FROM vpp_control.api_keys WHERE kind = 'operator' AND revoked_at IS NULL"
        ).single().decode(Int.self, at: 0)
    }
}
