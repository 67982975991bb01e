public import Foundation
public import Logging
import VPPLogKeys
public import VPPServer
public import VPPStorage
import VPPWire

/// Authenticates API keys against `vpp_control.api_keys`, and re-checks a connection's key before every call so
/// that a revoked key stops working at once, also on connections already open.
///
/// The per-call check is served from memory: a key's state is re-read from the database when it is older than
/// `recheckInterval`, a revocation made by this process marks the key at once, and one made by another server
/// arrives through NOTIFY (`Storage.changesChannel`).
public final class StorageAuthenticator: Authenticator {
    private let storage: Storage
    private let logger: Logger
    /// Whether each key was active when last read; trusted for the re-check interval.
    private let keyStates: ExpiringCache<UUID, Bool>

    public init(storage: Storage, logger: Logger, recheckInterval: Duration = .seconds(2)) {
        self.storage = storage
        self.logger = logger
        self.keyStates = ExpiringCache(lifetime: recheckInterval)
    }

    public func authenticate(apiKey: String) async throws -> Principal {
        guard !apiKey.isEmpty else {
            throw RPCError.unauthenticated("No API key was presented; send an operator or tenant key in the Hello.")
        }
        guard let key = try await self.storage.apiKeys.find(secret: apiKey), key.revokedAt == nil else {
            throw RPCError.unauthenticated(
                "The API key is unknown or revoked; ask your platform operator for a valid key."
            )
        }
        self.keyStates.store(true, for: key.id)
        do {
            try await self.storage.apiKeys.markUsed(key.id)
        } catch {
            self.logger.debug("Could not record a key's last use", metadata: [LogKey.error: "\(error)"])
        }
        switch key.kind {
        case .operator:
            return Principal(kind: .operator, tenantID: nil, keyID: key.id.lowercasedText, keyName: key.name)
        case .tenant:
            return Principal(
                kind: .tenant,
                tenantID: key.tenantID?.lowercasedText,
                keyID: key.id.lowercasedText,
                keyName: key.name
            )
        }
    }

    public func validate(_ principal: Principal) async throws {
        guard let keyID = UUID(canonicalText: principal.keyID) else {
            throw RPCError.unauthenticated("The connection's key is not valid.")
        }
        let active: Bool
        switch self.keyStates.lookup(keyID) {
        case .value(let cached):
            active = cached
        case .read(let due, let claimed):
            // One query re-checks this key and every other key past half its lifetime: with a key per tenant and
            // 1,000 tenants calling, a query per key every interval was 500 queries a second (docs/performance.md).
            defer { if claimed { self.keyStates.endRefresh() } }
            let activeKeys = try await self.storage.apiKeys.activeKeys(among: due)
            for id in due { self.keyStates.store(activeKeys.contains(id), for: id) }
            active = activeKeys.contains(keyID)
        }
        guard active else {
            throw RPCError.unauthenticated("The API key was revoked; this connection can make no more calls.")
        }
    }

    /// A key was revoked (here or, through NOTIFY, elsewhere): refuse it from the next call on.
    public func keyRevoked(_ keyID: UUID) {
        self.keyStates.store(false, for: keyID)
    }

    /// A key changed elsewhere: read its state from the database on its next call.
    public func forgetKey(_ keyID: UUID) {
        self.keyStates.remove(keyID)
    }

    /// Forget every cached key state (e.g. after the change listener reconnected and may have missed notifications).
    public func forgetAll() {
        self.keyStates.removeAll()
    }
}
