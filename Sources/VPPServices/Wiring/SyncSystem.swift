public import AppleVPP
import Foundation
public import Logging
public import VPPJobs
public import VPPLicensing
public import VPPNotifications
public import VPPPush
public import VPPStorage
public import VPPSync
public import VPPTokens

/// The token and sync parts of a server, wired together once (vppd and the test server build them the same way).
public struct SyncSystem: Sendable {
    public let apple: AppleVPPClient
    public let identity: MDMInfo
    public let tokens: TokenStore
    public let manager: TokenManager
    public let syncStore: SyncStore
    public let runner: SyncRunner
    public let queue: JobQueue
    public let syncs: SyncJobs
    public let handler: SyncJobHandler
    public let catalog: CatalogStore
    public let ledger: LicenseLedger
    public let push: PushRunner
    public let pushHandler: PushJobHandler
    /// Acts on Apple's notifications (issue 18).
    public let notificationHandler: NotificationJobHandler
    /// Registers tokens' notifications at Apple; nil when notifications are off.
    public let subscriber: NotificationSubscriber?
    public let scheduleInterval: Duration

    /// The job handlers a worker runs: syncs, pushes and Apple's notifications.
    public var handlers: [String: any JobHandler] {
        [
            SyncJobs.kind: self.handler, SyncJobs.pushKind: self.pushHandler,
            NotificationJobs.kind: self.notificationHandler,
        ]
    }

    /// - Parameters:
    ///   - scheduleInterval: R7, how often each token syncs on schedule (12 hours by default: twice a day).
    ///   - version: this server's version, sent to Apple in `mdmInfo.metadata`.
    ///   - notificationURL: the public URL Apple sends notifications to (without the token's part); nil turns
    ///     notifications off (events are polled).
    ///   - eventSignals: wakes a push when its event's notification arrives (the change listener's hub).
    ///   - notifiedPollInterval: how long a push waits for a notification before it polls (while they arrive).
    public static func make(
        storage: Storage,
        cipher: TokenCipher,
        apple: AppleVPPClient,
        scheduleInterval: Duration,
        fullSyncInterval: Duration = .seconds(24 * 3600),
        eventPollInterval: Duration = .seconds(30),
        reclaim: LicenseLedger.ReclaimPolicy = .immediate,
        notificationURL: String? = nil,
        eventSignals: (any EventSignals)? = nil,
        notifiedPollInterval: Duration = .seconds(300),
        version: String,
        logger: Logger
    ) async throws -> SyncSystem {
        let identity = PlatformIdentity.mdmInfo(id: try await storage.platformMDMID(), version: version)
        let tokens = TokenStore(storage: storage, cipher: cipher, logger: logger)
        let subscriber = notificationURL.map {
            NotificationSubscriber(publicBaseURL: $0, tokens: tokens, logger: logger)
        }
        let syncStore = SyncStore(storage: storage)
        let runner = SyncRunner(
            tokens: tokens,
            store: syncStore,
            apple: apple,
            identity: identity,
            fullSyncInterval: fullSyncInterval,
            notifications: subscriber,
            logger: logger
        )
        let queue = JobQueue(pool: storage.pool, logger: logger)
        let syncs = SyncJobs(queue: queue)
        let ledger = LicenseLedger(storage: storage, logger: logger, reclaim: reclaim)
        let events = EventNotifications(ledger: ledger, tokens: tokens)
        let push = PushRunner(
            ledger: ledger,
            tokens: tokens,
            apple: apple,
            identity: identity,
            eventPollInterval: eventPollInterval,
            notifiedPollInterval: notifiedPollInterval,
            events: events,
            signals: eventSignals,
            logger: logger
        )
        return SyncSystem(
            apple: apple,
            identity: identity,
            tokens: tokens,
            manager: TokenManager(
                store: tokens,
                storage: storage,
                apple: apple,
                identity: identity,
                scheduleInterval: scheduleInterval,
                notifications: subscriber,
                logger: logger
            ),
            syncStore: syncStore,
            runner: runner,
            queue: queue,
            syncs: syncs,
            handler: SyncJobHandler(runner: runner, store: syncStore, ledger: ledger, syncs: syncs, logger: logger),
            catalog: CatalogStore(storage: storage),
            ledger: ledger,
            push: push,
            pushHandler: PushJobHandler(runner: push, syncs: syncs, logger: logger),
            notificationHandler: NotificationJobHandler(
                tokens: tokens,
                syncStore: syncStore,
                ledger: ledger,
                syncs: syncs,
                events: events,
                apple: apple,
                identity: identity,
                logger: logger
            ),
            subscriber: subscriber,
            scheduleInterval: scheduleInterval
        )
    }
}
