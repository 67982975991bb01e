public import AppleVPP
import Foundation
public import Logging
public import VPPJobs
public import VPPLicensing
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
    public let scheduleInterval: Duration

    /// The job handlers a worker runs: syncs and pushes.
    public var handlers: [String: any JobHandler] {
        [SyncJobs.kind: self.handler, SyncJobs.pushKind: self.pushHandler]
    }

    /// - Parameters:
    ///   - scheduleInterval: R7, how often each token syncs on schedule (12 hours by default: twice a day).
    ///   - version: this server's version, sent to Apple in `mdmInfo.metadata`.
    public static func make(
        storage: Storage,
        cipher: TokenCipher,
        apple: AppleVPPClient,
        scheduleInterval: Duration,
        fullSyncInterval: Duration = .seconds(24 * 3600),
        eventPollInterval: Duration = .seconds(30),
        reclaim: LicenseLedger.ReclaimPolicy = .immediate,
        version: String,
        logger: Logger
    ) async throws -> SyncSystem {
        let identity = PlatformIdentity.mdmInfo(id: try await storage.platformMDMID(), version: version)
        let tokens = TokenStore(storage: storage, cipher: cipher, logger: logger)
        let syncStore = SyncStore(storage: storage)
        let runner = SyncRunner(
            tokens: tokens,
            store: syncStore,
            apple: apple,
            identity: identity,
            fullSyncInterval: fullSyncInterval,
            logger: logger
        )
        let queue = JobQueue(pool: storage.pool, logger: logger)
        let syncs = SyncJobs(queue: queue)
        let ledger = LicenseLedger(storage: storage, logger: logger, reclaim: reclaim)
        let push = PushRunner(
            ledger: ledger,
            tokens: tokens,
            apple: apple,
            identity: identity,
            eventPollInterval: eventPollInterval,
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
            scheduleInterval: scheduleInterval
        )
    }
}
