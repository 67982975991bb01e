import NIOConcurrencyHelpers
public import VPPServer
import VPPWire

/// An authenticator with a fixed table of keys, for tests of the RPC layer that need no database.
/// Keys can be revoked while connections are open.
public final class StaticAuthenticator: Authenticator {
    private let keys: NIOLockedValueBox<[String: Principal]>
    private let revoked = NIOLockedValueBox<Set<String>>([])

    public init(_ keys: [String: Principal]) {
        self.keys = NIOLockedValueBox(keys)
    }

    public func authenticate(apiKey: String) async throws -> Principal {
        guard !apiKey.isEmpty else { throw RPCError.unauthenticated("No API key was presented.") }
        guard let principal = self.keys.withLockedValue({ $0[apiKey] }),
            !self.revoked.withLockedValue({ $0.contains(principal.keyID) })
        else {
            throw RPCError.unauthenticated("The API key is unknown or revoked.")
        }
        return principal
    }

    public func validate(_ principal: Principal) async throws {
        if self.revoked.withLockedValue({ $0.contains(principal.keyID) }) {
            throw RPCError.unauthenticated("The API key was revoked.")
        }
    }

    public func revoke(keyID: String) {
        _ = self.revoked.withLockedValue { $0.insert(keyID) }
    }
}
