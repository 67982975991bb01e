public import Foundation
public import Logging
import NIOConcurrencyHelpers
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
    private let recheckInterval: Duration
    private let keyStates = NIOLockedValueBox<[UUID: (active: Bool, checked: ContinuousClock.Instant)]>([:])

    public init(storage: Storage, logger: Logger, recheckInterval: Duration = .seconds(2)) {
        self.storage = storage
        self.logger = logger
        self.recheckInterval = recheckInterval
    }

    public func authenticate(apiKey: String) async throws -> Principal {
        guard !apiKey.isEmpty else {
            throw RPCError.unauthenticated("No API key was presented; send an operator or tenant key in the Hello.")
        }
        guard let key = try await self.storage.apiKeys.find(secret: apiKey), key.revokedAt == nil else {
            throw RPCError.unauthenticated("The API key is unknown or revoked; ask your platform operator for a valid key.")
        }
        self.keyStates.withLockedValue { $0[key.id] = (true, ContinuousClock.now) }
        do {
            try await self.storage.apiKeys.markUsed(key.id)
        } catch {
            self.logger.debug("Could not record a key's last use", metadata: ["error": "\(error)"])
        }
        switch key.kind {
        case .operator:
            return Principal(kind: .operator, tenantID: nil, keyID: key.id.uuidString.lowercased(), keyName: key.name)
        case .tenant:
            return Principal(
                kind: .tenant,
                tenantID: key.tenantID?.uuidString.lowercased(),
                keyID: key.id.uuidString.lowercased(),
                keyName: key.name
            )
        }
    }

    public func validate(_ principal: Principal) async throws {
        guard let keyID = UUID(uuidString: principal.keyID) else {
            throw RPCError.unauthenticated("The connection's key is not valid.")
        }
        let cached = self.keyStates.withLockedValue { $0[keyID] }
        var active: Bool
        if let cached, ContinuousClock.now - cached.checked < self.recheckInterval {
            active = cached.active
        } else {
            active = try await self.storage.apiKeys.isActive(keyID)
            self.keyStates.withLockedValue { $0[keyID] = (active, ContinuousClock.now) }
        }
        guard active else {
            throw RPCError.unauthenticated("The API key was revoked; this connection can make no more calls.")
        }
    }

    /// A key was revoked (here or, through NOTIFY, elsewhere): refuse it from the next call on.
    public func keyRevoked(_ keyID: UUID) {
        self.keyStates.withLockedValue { $0[keyID] = (false, ContinuousClock.now) }
    }

    /// A key changed elsewhere: read its state from the database on its next call.
    public func forgetKey(_ keyID: UUID) {
        _ = self.keyStates.withLockedValue { $0.removeValue(forKey: keyID) }
    }

    /// Forget every cached key state (e.g. after the change listener reconnected and may have missed notifications).
    public func forgetAll() {
        self.keyStates.withLockedValue { $0.removeAll() }
    }
}
