/// Who a connection runs as: the owner of the API key it presented.
public struct Principal: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// A platform operator: manages tenants and keys (C9).
        case `operator`
        /// A tenant's admin tool: acts inside one tenant only.
        case tenant
    }

    public var kind: Kind
    /// The tenant's id for a tenant key; nil for an operator key.
    public var tenantID: String?
    public var keyID: String
    public var keyName: String

    public init(kind: Kind, tenantID: String?, keyID: String, keyName: String) {
        self.kind = kind
        self.tenantID = tenantID
        self.keyID = keyID
        self.keyName = keyName
    }

    /// "operator:<key id>" or "tenant:<key id>": how logs and audit records name the principal (never the key).
    public var description: String { "\(self.kind.rawValue):\(self.keyID)" }
}

/// Decides who an API key belongs to, and whether a principal may still act (its key not revoked, its tenant not
/// deleted). The storage layer provides the real one; tests may use a fixed table.
public protocol Authenticator: Sendable {
    /// The principal for this key, or an error (UNAUTHENTICATED for a missing, unknown or revoked key).
    func authenticate(apiKey: String) async throws -> Principal

    /// Checked before every call, so that a revoked key stops working on its next call, also on open connections.
    /// Throws UNAUTHENTICATED when the principal may no longer act.
    func validate(_ principal: Principal) async throws
}
