import Foundation
public import VPPServer
public import VPPStorage
public import VPPSync
public import VPPTokens

/// What the token, sync and catalog services need: present when the server talks to Apple.
public struct TokenServiceDependencies: Sendable {
    public var manager: TokenManager
    public var syncs: SyncJobs
    public var catalog: CatalogStore
    public var progress: JobProgressHub
    /// The license ledger (assignments, licenses); nil leaves those RPCs UNIMPLEMENTED.
    public var ledger: LicenseLedger?
    /// How often a WatchSyncJob stream re-reads its job when no notification arrives.
    public var watchPollInterval: Duration

    public init(
        manager: TokenManager,
        syncs: SyncJobs,
        catalog: CatalogStore,
        progress: JobProgressHub,
        ledger: LicenseLedger? = nil,
        watchPollInterval: Duration = .seconds(2)
    ) {
        self.ledger = ledger
        self.manager = manager
        self.syncs = syncs
        self.catalog = catalog
        self.progress = progress
        self.watchPollInterval = watchPollInterval
    }
}

/// Builds the dispatch table of every service this server version implements. Methods declared in Protos/ and not
/// registered here answer UNIMPLEMENTED. `directoryObserver` is told when a tenant's directory changed (the license
/// ledger follows it).
public enum Services {
    public static func makeRouter(
        storage: Storage,
        authenticator: StorageAuthenticator,
        tokens: TokenServiceDependencies? = nil,
        directoryObserver: any DirectoryObserver = NoDirectoryObserver(),
        changeFeed: ChangeFeedHub? = nil
    ) -> RPCRouter {
        var router = RPCRouter()
        router.registerSystemService()
        // Issue 19. Without a hub fed by a ChangeListener, the streams find new changes by polling.
        ChangeService(
            changeLog: storage.changeLog,
            hub: changeFeed ?? ChangeFeedHub(changeLog: storage.changeLog, logger: storage.logger)
        ).register(into: &router)
        OperatorService(storage: storage, authenticator: authenticator).register(into: &router)
        TenantAuditService(storage: storage).register(into: &router)
        // The directory needs no Apple: always served.
        DirectoryService(
            directory: DirectoryStore(storage: storage, observer: directoryObserver),
            auditor: TenantAuditor(storage: storage)
        ).register(into: &router)
        if let tokens {
            TokenService(
                manager: tokens.manager,
                syncs: tokens.syncs,
                auditor: TenantAuditor(storage: storage),
                progress: tokens.progress,
                watchPollInterval: tokens.watchPollInterval
            ).register(into: &router)
            CatalogService(catalog: tokens.catalog).register(into: &router)
            if let ledger = tokens.ledger {
                AssignmentService(ledger: ledger, syncs: tokens.syncs, auditor: TenantAuditor(storage: storage))
                    .register(into: &router)
            }
        }
        return router
    }
}
