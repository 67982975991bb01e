public import AppleVPP
public import Foundation
public import Logging
import NIOConcurrencyHelpers
import VPPClock
import VPPLogKeys
public import VPPStorage

/// The phases of a sync, as `SyncJob.phase` reports them.
public enum SyncPhase: String, Sendable, CaseIterable {
    case clientConfig = "client_config"
    case assets
    case metadata
    case users
    case assignments
    case reconcile
    case done
}

/// Why a sync stopped, and what the queue should do about it.
public struct SyncFailure: Error, Sendable, CustomStringConvertible {
    public enum Disposition: Sendable, Hashable {
        /// May heal: try again later (after at least `after` when Apple said so).
        case retry(after: Duration?)
        /// Will not heal by waiting (token expired, revoked, claimed elsewhere, deleted; tenant suspended).
        case stop
    }

    public var disposition: Disposition
    /// In words that say what to do; never contains the token.
    public var message: String

    public var description: String { message }

    public init(disposition: Disposition, message: String) {
        self.disposition = disposition
        self.message = message
    }
}

/// Reads one token's licenses from Apple and writes them to the tenant's schema (R8-R12).
///
/// Every write is idempotent (keyed by Apple's ids), so a sync whose worker died half-way runs again from the start and
/// leaves no duplicates. Reads are incremental (`sinceVersionId`) when a version is known and the last full read is
/// recent; otherwise, or when Apple no longer knows the version (9721), everything is read.
public struct SyncRunner: Sendable {
    public typealias Progress = @Sendable (_ phase: SyncPhase, _ done: Int64, _ total: Int64) async -> Void

    let tokens: TokenStore
    let store: SyncStore
    let apple: AppleVPPClient
    let identity: MDMInfo
    /// How old the last full read may be before an incremental sync reads everything anyway.
    let fullSyncInterval: Duration
    /// Registers the token's notifications when Apple holds none of this service's (nil: notifications are off).
    let notifications: NotificationSubscriber?
    let logger: Logger
    let now: @Sendable () -> Date

    public init(
        tokens: TokenStore,
        store: SyncStore,
        apple: AppleVPPClient,
        identity: MDMInfo,
        fullSyncInterval: Duration = .seconds(24 * 3600),
        notifications: NotificationSubscriber? = nil,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.tokens = tokens
        self.store = store
        self.apple = apple
        self.identity = identity
        self.fullSyncInterval = fullSyncInterval
        self.notifications = notifications
        self.logger = logger
        self.now = now
    }

    /// Syncs the token; throws `SyncFailure` (and records the token's new state when Apple says it is dead or
    /// claimed by another MDM).
    public func run(
        tenantID: UUID,
        tokenID: UUID,
        jobID: UUID,
        full requestedFull: Bool,
        progress: Progress
    ) async throws(SyncFailure) -> SyncSummary {
        do {
            return try await self.sync(
                tenantID: tenantID,
                tokenID: tokenID,
                jobID: jobID,
                requestedFull: requestedFull,
                progress: progress
            )
        } catch let failure as SyncFailure {
            throw failure
        } catch let error as AppleVPPError {
            throw await self.handleApple(error, tenantID: tenantID, tokenID: tokenID)
        } catch let error as StorageError {
            switch error {
            case .notFound:
                throw SyncFailure(disposition: .stop, message: "The token was deleted; its sync stopped.")
            case .failedPrecondition(let message, _):
                throw SyncFailure(disposition: .stop, message: message)
            default:
                throw SyncFailure(disposition: .retry(after: nil), message: "\(error)")
            }
        } catch is CancellationError {
            throw SyncFailure(disposition: .retry(after: nil), message: "The sync was interrupted; it will run again.")
        } catch {
            // Database trouble and the like: heals by itself.
            self.logger.warning("Sync failed", metadata: [LogKey.tokenID: "\(tokenID)", LogKey.error: "\(error)"])
            throw SyncFailure(
                disposition: .retry(after: nil),
                message: "The sync failed (\(type(of: error))); it will be retried."
            )
        }
    }

    private func sync(
        tenantID: UUID,
        tokenID: UUID,
        jobID: UUID,
        requestedFull: Bool,
        progress: Progress
    ) async throws -> SyncSummary {
        let startedAt = self.now()
        let (record, credential, versions) = try await self.tokens.credential(tenantID: tenantID, tokenID)
        switch record.status {
        case .active: break
        case .expired, .invalid, .claimedElsewhere:
            throw SyncFailure(
                disposition: .stop,
                message:
                    "The token is \(record.status.rawValue.replacingOccurrences(of: "_", with: " ")): \(record.statusReason) Renew it with a new .vpptoken file to sync again."
            )
        }
        let token: ServiceToken
        do {
            token = try ServiceToken(fileContents: credential, now: startedAt)
        } catch .expired {
            let reason = "The token expired; download a new .vpptoken file and renew it (R3)."
            try await self.tokens.setStatus(tenantID: tenantID, tokenID, .expired, reason: reason)
            throw SyncFailure(disposition: .stop, message: reason)
        } catch {
            throw SyncFailure(disposition: .stop, message: "The stored token no longer parses (\(error)); renew it.")
        }
        try await self.store.recordStart(tenantID: tenantID, tokenID: tokenID, jobID: jobID, at: startedAt)

        let observed = NIOLockedValueBox<MDMInfo??>(nil)
        // Only a response that names another MDM counts; one that names none (the claim was cleared) is re-claimed
        // below, at the client-config phase.
        let session = self.apple.session(token: token, ownMDMInfo: self.identity) { other in
            guard let other else { return }
            observed.withLockedValue { $0 = .some(other) }
        }
        func checkOwnership() async throws {
            if let other = observed.withLockedValue({ $0 }) {
                throw await self.claimedElsewhere(other, tenantID: tenantID, tokenID: tokenID)
            }
        }

        var full = requestedFull || versions.users == nil || versions.assignments == nil
        if let last = versions.lastFullSyncAt, startedAt.timeIntervalSince(last) > self.fullSyncInterval.inSeconds {
            full = true
        }
        if versions.lastFullSyncAt == nil { full = true }
        var summary = SyncSummary()

        // Client config: is the token still ours (R4)?
        await progress(.clientConfig, 0, 1)
        let config = try await session.clientConfig()
        if let holder = config.mdmInfo, AppleVPPSession.isForeign(holder, own: self.identity) {
            throw await self.claimedElsewhere(holder, tenantID: tenantID, tokenID: tokenID)
        }
        // R4, issue 18: Apple says nothing when another MDM re-points the token's notifications; only the client
        // config shows it. A URL this service did not register means someone else now hears of its events.
        let ours = self.notifications?.url(tenantID: tenantID, tokenID: tokenID)
        if let foreign = NotificationSubscriber.foreignURL(
            config.notificationUrl,
            registered: record.notifications.url,
            ours: ours
        ) {
            throw await self.claimedElsewhere(
                reason:
                    "Apple now sends this token's notifications to \(foreign), not to this service: another MDM re-pointed them, so it hears of this token's purchases and assignments; its syncs stopped. Using one token in two products loses assignments (R4): upload a new token for this service, or take this one over.",
                otherMDMName: config.mdmInfo?.name ?? "",
                tenantID: tenantID,
                tokenID: tokenID
            )
        }
        if config.mdmInfo == nil || (ours != nil && config.notificationUrl != ours) {
            // Nobody claims it (e.g. the claim was reset at Apple), or its notifications are not registered (yet, or
            // no longer at this URL): claim it again for this service.
            if let notifications = self.notifications {
                _ = try await notifications.claim(
                    session,
                    identity: self.identity,
                    tenantID: tenantID,
                    tokenID: tokenID
                )
            } else {
                _ = try await session.claim(self.identity)
            }
        }
        try await checkOwnership()

        // Assets (always read whole: a library has at most a few thousand).
        await progress(.assets, 0, 0)
        let assets = try await session.allAssets()
        try await checkOwnership()
        await progress(.assets, Int64(assets.items.count), Int64(assets.items.count))

        // R9: public metadata; an app the public lookup does not know is a custom B2B app and is skipped.
        let appIDs = assets.items.filter { $0.productType == .app }.map(\.adamId)
        await progress(.metadata, 0, Int64(appIDs.count))
        let bookIDs = assets.items.filter { $0.productType == .book }.map(\.adamId)
        let metadata = try await self.apple.lookupContentMetadata(adamIds: appIDs + bookIDs)
        var byID: [String: ContentMetadata] = [:]
        for item in metadata { byID[item.adamId] = item }
        await progress(.metadata, Int64(appIDs.count), Int64(appIDs.count))

        var synced: [SyncedAsset] = []
        var skipped: [SkippedAssetRecord] = []
        for asset in assets.items {
            let meta = byID[asset.adamId]
            if asset.productType == .app, meta == nil {
                skipped.append(
                    SkippedAssetRecord(
                        tokenID: tokenID,
                        adamID: asset.adamId,
                        pricingParam: asset.pricingParam.rawValue,
                        productType: asset.productType.rawValue,
                        reason: "custom B2B app: not publicly available in the App Store, so it is not synced (R9)",
                        totalCount: asset.isUnlimited ? 0 : asset.totalCount,
                        seenAt: startedAt
                    )
                )
                continue
            }
            // R12: books are kept even when the lookup does not name them.
            synced.append(SyncedAsset(asset, metadata: meta))
        }
        try await self.store.applyAssets(
            tenantID: tenantID,
            tokenID: tokenID,
            assets: synced,
            skipped: skipped,
            at: startedAt
        )
        summary.apps = synced.filter { $0.productType == ProductType.app.rawValue }.count
        summary.books = synced.count - summary.apps
        summary.skippedAssets = skipped.count

        // Users (R10): only ours are written; the rest are counted.
        await progress(.users, 0, 0)
        var users: PagedResult<ResponseUser>
        do {
            users = try await session.allUsers(sinceVersionId: full ? nil : versions.users)
        } catch let error as AppleVPPError where error.errorNumber == AppleVPPError.Number.invalidVersionId {
            full = true
            users = try await session.allUsers()
        }
        try await checkOwnership()
        // R20: invited users get the link that accepts the invitation.
        let invitationTemplate = try await self.apple.serviceConfig().urls[ServiceURLKey.invitationEmail]
        let userCounts = try await self.store.applyUsers(
            tenantID: tenantID,
            tokenID: tokenID,
            users: users.items.map { SyncedUser($0, invitationTemplate: invitationTemplate) },
            at: startedAt
        )
        await progress(.users, Int64(users.items.count), Int64(users.items.count))

        // Assignments: ours confirmed or taken in, the rest counted as foreign.
        await progress(.assignments, 0, 0)
        var assignments: PagedResult<Assignment>
        do {
            assignments = try await self.readAssignments(
                session,
                since: full ? nil : versions.assignments,
                progress: progress
            )
        } catch let error as AppleVPPError where error.errorNumber == AppleVPPError.Number.invalidVersionId {
            full = true
            assignments = try await self.readAssignments(session, since: nil, progress: progress)
        }
        try await checkOwnership()
        let total = Int64(assignments.items.count)
        await progress(.assignments, total, total)
        await progress(.reconcile, 0, total)
        let assignmentCounts = try await self.store.applyAssignments(
            tenantID: tenantID,
            tokenID: tokenID,
            assignments: assignments.items.map {
                SyncedAssignment(
                    adamID: $0.adamId,
                    pricingParam: $0.pricingParam.rawValue,
                    clientUserID: $0.clientUserId ?? "",
                    serialNumber: $0.serialNumber ?? ""
                )
            },
            full: full,
            at: startedAt
        )
        await progress(.reconcile, total, total)

        let own = try await self.store.ownCounts(tenantID: tenantID, tokenID: tokenID)
        summary.users = own.users
        summary.assignments = own.assignments
        summary.fullSync = full
        if full {
            summary.foreignUsers = userCounts.foreign
            summary.foreignAssignments = assignmentCounts.foreign
        } else {
            // Incremental reads see only changes: foreign counts are exact after each full read (at least daily).
            summary.foreignUsers = record.foreignUserCount
            summary.foreignAssignments = record.foreignAssignmentCount + assignmentCounts.foreign
        }
        try await self.store.recordFinish(
            tenantID: tenantID,
            tokenID: tokenID,
            jobID: jobID,
            result: "succeeded",
            error: "",
            summary: summary,
            versions: TokenSyncVersions(
                assets: assets.versionId,
                users: users.versionId ?? versions.users,
                assignments: assignments.versionId ?? versions.assignments
            ),
            at: self.now()
        )
        await progress(.done, total, total)
        return summary
    }

    /// Every page of assignments; read again (once) when the data changed between pages.
    private func readAssignments(
        _ session: AppleVPPSession,
        since: String?,
        progress: Progress
    ) async throws -> PagedResult<Assignment> {
        // The longest phase: its progress moves with every page read (issue 16). The reader calls it only while this
        // function runs.
        try await withoutActuallyEscaping(progress) { progress in
            let report: @Sendable (Int, Int) async -> Void = { read, expected in
                await progress(.assignments, Int64(read), Int64(expected))
            }
            let first = try await session.allAssignments(sinceVersionId: since, progress: report)
            if first.consistent { return first }
            return try await session.allAssignments(sinceVersionId: since, progress: report)
        }
    }

    private func claimedElsewhere(_ holder: MDMInfo?, tenantID: UUID, tokenID: UUID) async -> SyncFailure {
        let name = holder?.name ?? "unknown"
        return await self.claimedElsewhere(
            reason:
                "Another MDM (\(name)) claimed this token at Apple; its syncs stopped. Using one token in two products loses assignments (R4): upload a new token for this service, or take this one over.",
            otherMDMName: name,
            tenantID: tenantID,
            tokenID: tokenID
        )
    }

    private func claimedElsewhere(reason: String, otherMDMName name: String, tenantID: UUID, tokenID: UUID) async
        -> SyncFailure
    {
        self.logger.warning(
            "A VPP token was claimed by someone else at Apple",
            metadata: [LogKey.tenantID: "\(tenantID)", LogKey.tokenID: "\(tokenID)", LogKey.error: "\(reason)"]
        )
        do {
            try await self.tokens.setStatus(
                tenantID: tenantID,
                tokenID,
                .claimedElsewhere,
                reason: reason,
                otherMDMName: name
            )
        } catch {
            self.logger.warning(
                "Could not record the token's state",
                metadata: [LogKey.tokenID: "\(tokenID)", LogKey.error: "\(error)"]
            )
        }
        return SyncFailure(disposition: .stop, message: reason)
    }

    private func handleApple(_ error: AppleVPPError, tenantID: UUID, tokenID: UUID) async -> SyncFailure {
        if error.isTokenDead {
            let status: TokenRecord.Status =
                error.errorNumber == AppleVPPError.Number.tokenExpired ? .expired : .invalid
            let reason: String
            switch error.errorNumber {
            case AppleVPPError.Number.tokenExpired:
                reason = "Apple says the token expired; download a new .vpptoken file and renew it (R3)."
            case AppleVPPError.Number.tokenRevoked:
                reason = "Apple says the token was revoked; download a new .vpptoken file and renew it."
            default:
                reason = "Apple no longer accepts the token; download a new .vpptoken file and renew it."
            }
            do {
                try await self.tokens.setStatus(tenantID: tenantID, tokenID, status, reason: reason)
            } catch {
                self.logger.warning(
                    "Could not record the token's state",
                    metadata: [LogKey.tokenID: "\(tokenID)", LogKey.error: "\(error)"]
                )
            }
            return SyncFailure(disposition: .stop, message: reason)
        }
        if error.isRetryable {
            return SyncFailure(
                disposition: .retry(after: error.retryAfterSeconds.map { .milliseconds(Int64($0 * 1000)) }),
                message:
                    "Apple's VPP service is \(error.isThrottled ? "throttling this organisation" : "unavailable") (\(error)); the sync will be retried."
            )
        }
        return SyncFailure(disposition: .stop, message: "Apple refused a sync request: \(error).")
    }
}
