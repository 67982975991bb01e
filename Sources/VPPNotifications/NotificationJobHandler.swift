public import AppleVPP
public import Foundation
public import Logging
public import VPPJobs
import VPPLogKeys
public import VPPPush
public import VPPStorage
public import VPPSync

/// Acts on one notification from Apple (issue 18), as a job on the queue:
/// - ASSET_MANAGEMENT: the event's answer is applied to the outbox rows waiting for it (the push that sent them is
///   woken too, and finds them answered); a 9709 puts the target back in line and has the counts synced again.
/// - USER_MANAGEMENT and USER_ASSOCIATED: this service's users take the state Apple reports; a user who accepted the
///   invitation is Associated at once, so the installs that waited for it go ahead (R20).
/// - ASSET_COUNT: the asset's counts are read from Apple (absolute numbers: a repeated or late notification cannot
///   count a purchase twice) and the line is served; a refund shows as over-assigned, and nothing is revoked.
/// - TEST, subscriptions and unlimited assets: recorded and shown, not acted on.
public struct NotificationJobHandler: JobHandler {
    let tokens: TokenStore
    let syncStore: SyncStore
    let ledger: LicenseLedger
    let syncs: SyncJobs
    let events: EventNotifications
    let apple: AppleVPPClient
    let identity: MDMInfo
    /// How long received notifications are kept (for `vppctl tokens notifications` and de-duplication).
    let retention: Duration
    let logger: Logger

    public init(
        tokens: TokenStore,
        syncStore: SyncStore,
        ledger: LicenseLedger,
        syncs: SyncJobs,
        events: EventNotifications,
        apple: AppleVPPClient,
        identity: MDMInfo,
        retention: Duration = .seconds(7 * 24 * 3600),
        logger: Logger
    ) {
        self.tokens = tokens
        self.syncStore = syncStore
        self.ledger = ledger
        self.syncs = syncs
        self.events = events
        self.apple = apple
        self.identity = identity
        self.retention = retention
        self.logger = logger
    }

    public func run(_ job: JobRecord, context: JobContext) async throws -> JobOutcome {
        guard let payload = NotificationJobs.payload(of: job) else {
            return .failed(error: "The job's payload is not a notification reference; it was not run.", result: "{}")
        }
        let (tenantID, tokenID) = (payload.tenantID, payload.tokenID)
        do {
            guard
                let received = try await self.tokens.notification(
                    tenantID: tenantID,
                    tokenID,
                    notificationID: payload.notificationID
                )
            else {
                return .succeeded(result: "{\"outcome\":\"the notification is no longer held\"}")
            }
            let outcome = try await self.process(received, tenantID: tenantID)
            if outcome.hasPrefix(Self.notYet), job.attempt < 3 {
                // The push that registered these users records them once it reads the same notification: a moment.
                return .retry(after: .seconds(1), error: outcome)
            }
            try await self.tokens.markNotificationProcessed(
                tenantID: tenantID,
                tokenID,
                notificationID: received.notificationID,
                outcome: outcome
            )
            try await self.tokens.pruneNotifications(
                tenantID: tenantID,
                tokenID,
                receivedBefore: Date().addingTimeInterval(-self.retention.inSeconds)
            )
            let text = (try? JSONEncoder().encode(["outcome": outcome])).map { String(decoding: $0, as: UTF8.self) }
            return .succeeded(result: text ?? "{}")
        } catch let error as StorageError {
            if case .notFound = error {
                return .succeeded(result: "{\"outcome\":\"the token or tenant is gone\"}")
            }
            return self.retryOrFail(job, "\(error)")
        } catch let error as AppleVPPError {
            return self.retryOrFail(job, "Apple did not answer (\(error)); the notification will be processed again.")
        } catch {
            return self.retryOrFail(job, "Processing the notification failed (\(type(of: error))); it will run again.")
        }
    }

    /// The start of an outcome that may change if the job runs again shortly.
    static let notYet = "not yet:"

    private func retryOrFail(_ job: JobRecord, _ message: String) -> JobOutcome {
        job.attempt < job.maxAttempts ? .retry(after: nil, error: message) : .failed(error: message, result: "{}")
    }

    /// Acts on the notification; returns what it did, in words.
    func process(_ received: ReceivedNotification, tenantID: UUID) async throws -> String {
        let tokenID = received.tokenID
        let body = Data(received.body.utf8)
        switch NotificationType(rawValue: received.type) {
        case .test:
            return "test notification: Apple reaches this service"
        case .assetManagement:
            guard let eventID = received.eventID else { return "no eventId: ignored" }
            let (remaining, stale) = try await self.events.applyAssetEvent(
                tenantID: tenantID,
                tokenID: tokenID,
                eventID: eventID
            )
            if stale {
                _ = try await self.syncs.request(tenantID: tenantID, tokenID: tokenID, trigger: .ledger, full: true)
            }
            // Seats given back may have served the line: tell Apple about the seats that moved.
            try await self.syncs.pushPending(ledger: self.ledger, tenantID: tenantID)
            return "event \(eventID) applied; \(remaining) of its changes still wait for an answer"
        case .userManagement:
            let envelope = try NotificationEnvelope<UserManagementNotification>.decode(body)
            let users = envelope.notification.users ?? []
            let changed = try await self.applyUsers(users, tenantID, tokenID)
            if changed == 0, !users.isEmpty {
                return
                    "\(Self.notYet) \(envelope.notification.type) event \(envelope.notification.eventId): none of its users is recorded here (yet)"
            }
            return "\(envelope.notification.type) event \(envelope.notification.eventId): \(changed) users updated"
        case .userAssociated:
            // R20: the user accepted Apple's invitation: their installs go ahead now, not at the next sync.
            let envelope = try NotificationEnvelope<UserAssociatedNotification>.decode(body)
            let users = envelope.notification.associatedUsers.map { user -> ResponseUser in
                var user = user
                user.status = .associated
                return user
            }
            let changed = try await self.applyUsers(users, tenantID, tokenID)
            return "\(changed) users accepted their invitation"
        case .assetCount:
            let envelope = try NotificationEnvelope<AssetCountNotification>.decode(body)
            return try await self.applyCount(envelope.notification, tenantID, tokenID)
        default:
            return "recorded; this service does not act on \(received.type) notifications yet"
        }
    }

    private func applyUsers(_ users: [ResponseUser], _ tenantID: UUID, _ tokenID: UUID) async throws -> Int {
        guard !users.isEmpty else { return 0 }
        let template =
            users.contains { $0.status == .registered }
            ? try await self.apple.serviceConfig().urls[ServiceURLKey.invitationEmail] : nil
        return try await self.syncStore.applyNotifiedUsers(
            tenantID: tenantID,
            tokenID: tokenID,
            users: users.map { SyncedUser($0, invitationTemplate: template) },
            at: Date()
        )
    }

    private func applyCount(_ change: AssetCountNotification, _ tenantID: UUID, _ tokenID: UUID) async throws
        -> String
    {
        let (record, credential, _) = try await self.tokens.credential(tenantID: tenantID, tokenID)
        guard record.status == .active else {
            return "the token is \(record.status.rawValue); its counts are read when it is renewed"
        }
        let token = try ServiceToken(fileContents: credential, now: Date())
        let session = self.apple.session(token: token, ownMDMInfo: self.identity)
        let found = try await session.allAssets(
            filter: AssetFilter(pricingParam: change.pricingParam, adamId: change.adamId)
        ).items.first {
            $0.adamId == change.adamId && (change.pricingParam == nil || $0.pricingParam == change.pricingParam)
        }
        guard let asset = found else {
            _ = try await self.syncs.request(tenantID: tenantID, tokenID: tokenID, trigger: .notification, full: false)
            return "Apple no longer lists \(change.adamId); a sync was queued"
        }
        let applied = try await self.syncStore.applyAssetCounts(
            tenantID: tenantID,
            tokenID: tokenID,
            SyncedAsset(asset, metadata: nil),
            at: Date()
        )
        guard applied else {
            // A new purchase: the sync brings the asset in, with its metadata (R8, R9).
            _ = try await self.syncs.request(tenantID: tenantID, tokenID: tokenID, trigger: .notification, full: false)
            return
                "\(change.adamId) is new to this token (\(change.countDelta > 0 ? "+" : "")\(change.countDelta)); a sync was queued to bring it in"
        }
        // R15: more seats serve the line at once; fewer (a refund) leave what is over-assigned shown, nothing revoked.
        if try await self.ledger.allocateToken(tenantID: tenantID, tokenID: tokenID) {
            try await self.syncs.requestPush(tenantID: tenantID, tokenID: tokenID)
        }
        self.logger.info(
            "Apple reported new license counts",
            metadata: [
                LogKey.tenantID: "\(tenantID)", LogKey.tokenID: "\(tokenID)", LogKey.adamID: "\(change.adamId)",
            ]
        )
        return
            "\(change.adamId): \(change.countDelta > 0 ? "+" : "")\(change.countDelta) licenses; \(asset.isUnlimited ? "unlimited" : "\(asset.totalCount) bought") now"
    }
}
