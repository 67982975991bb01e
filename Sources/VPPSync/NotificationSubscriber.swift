public import AppleVPP
public import Foundation
public import Logging
import VPPLogKeys
public import VPPStorage

/// Registers tokens for Apple's notifications (issue 18): each token gets its own URL under the public base URL Apple
/// is given (`<base>/<tenant id>/<token id>`) and its own random auth token, which Apple sends back as
/// `Authorization: Bearer …` on every notification. The upload and renewal register (TokenManager), and every sync
/// registers again when Apple holds no URL or an old one of this service.
public struct NotificationSubscriber: Sendable {
    /// The URL Apple is given, without the token's part (e.g. `https://vpp.example.com/apple/notifications`).
    public let publicBaseURL: String
    let tokens: TokenStore
    let logger: Logger

    /// Every type Apple documents but the test, which Apple sends on registration anyway.
    public static let types: [NotificationType] = NotificationType.all.filter { $0 != .test }

    public init(publicBaseURL: String, tokens: TokenStore, logger: Logger) {
        var base = publicBaseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.publicBaseURL = base
        self.tokens = tokens
        self.logger = logger
    }

    /// The token's notification URL.
    public func url(tenantID: UUID, tokenID: UUID) -> String {
        "\(self.publicBaseURL)/\(tenantID.lowercasedText)/\(tokenID.lowercasedText)"
    }

    /// Claims the token for this service (`mdmInfo`) and registers its notifications, in one `POST /client/config`.
    /// Apple first sends a TEST_NOTIFICATION to the URL and refuses the whole configuration when it does not arrive
    /// (9728) or the URL is not acceptable (9710–9712): then the reason is recorded on the token, and the token is
    /// claimed without notifications (its events are polled, as before).
    public func claim(
        _ session: AppleVPPSession,
        identity: MDMInfo,
        tenantID: UUID,
        tokenID: UUID
    ) async throws -> ClientConfigResponse {
        let url = self.url(tenantID: tenantID, tokenID: tokenID)
        let secret = try await self.tokens.notificationSecret(tenantID: tenantID, tokenID)
        do {
            let answer = try await session.setClientConfig(
                ClientConfigRequest(
                    mdmInfo: identity,
                    notificationUrl: url,
                    notificationAuthToken: secret,
                    notificationTypes: Self.types.map(\.rawValue)
                )
            )
            try await self.tokens.recordSubscription(tenantID: tenantID, tokenID, url: url, error: "")
            return answer
        } catch let error as AppleVPPError where Self.refusesNotificationsOnly(error) {
            let reason =
                "Apple refused the notification URL \(url) (\(error.errorNumber.map(String.init) ?? "?"): \(error.message)); events are polled instead. Check that Apple can reach it (--notification-public-url)."
            self.logger.warning(
                "Apple refused to send notifications to this service",
                metadata: [
                    LogKey.tenantID: "\(tenantID)", LogKey.tokenID: "\(tokenID)", LogKey.error: "\(error)",
                ]
            )
            try await self.tokens.recordSubscription(tenantID: tenantID, tokenID, url: nil, error: reason)
            return try await session.claim(identity)
        }
    }

    static func refusesNotificationsOnly(_ error: AppleVPPError) -> Bool {
        switch error.errorNumber {
        case AppleVPPError.Number.notificationURLUnreachable?, AppleVPPError.Number.notificationURLNotHTTPS?,
            AppleVPPError.Number.notificationTooLong?, AppleVPPError.Number.notificationURLAndTokenRequired?:
            return true
        default:
            return false
        }
    }

    /// R4: the notification URL Apple holds for a token, when someone else put it there: not the one this service
    /// registered last, nor the one it would register now. Nil when it is this service's (or none).
    public static func foreignURL(_ held: String?, registered: String, ours: String?) -> String? {
        guard let held, !held.isEmpty else { return nil }
        if held == registered || held == ours { return nil }
        return held
    }
}
