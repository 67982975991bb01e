public import AppleVPP
import AsyncHTTPClient
import Foundation
public import Logging
public import VPPClient
import VPPJobs
import VPPNotifications
public import VPPPostgres
public import VPPProto
public import VPPServer
public import VPPServices
public import VPPStorage
public import VPPSync

/// The real server for integration tests: real services on real storage (a fresh database of the test cluster, or
/// the one given), an operator key, and the RPC port on a free port.
public struct TestVPPServer: Sendable {
    public let database: PostgresConfiguration
    public let pool: PostgresPool
    public let storage: Storage
    public let authenticator: StorageAuthenticator
    public let server: RPCServer
    public let operatorKey: String
    /// Listens for changes announced by other servers (see `ChangeListener`), when asked to.
    let listener: Task<Void, any Error>?
    /// Tokens, syncs and the catalog, when the server was given Apple (the simulator's URL).
    public let sync: SyncSystem?
    /// The background services (sync worker, scheduler) the server runs.
    let background: [Task<Void, any Error>]
    let httpClient: HTTPClient?
    /// Where Apple's notifications go (`<url>/<tenant>/<token>`), when `TestAppleOptions.notifications` is on.
    public let notificationURL: String?
    /// The change feed's fan-out (issue 19): fed by the listener when the server listens for changes.
    public let changeFeed: ChangeFeedHub

    public var port: Int { self.server.localPort ?? 0 }

    public static func start(
        database: PostgresConfiguration? = nil,
        prefix: String = "vpp",
        poolSize: Int = 8,
        keyRecheckInterval: Duration = .seconds(2),
        tenantStateTTL: Duration = .seconds(2),
        listenForChanges: Bool = false,
        operatorKey givenOperatorKey: String? = nil,
        apple: TestAppleOptions? = nil,
        directoryObserver: (any DirectoryObserver)? = nil,
        changeFeedConfiguration: ChangeFeedHub.Configuration = ChangeFeedHub.Configuration(),
        configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> TestVPPServer {
        var logger = Logger(label: "test.vpp")
        logger.logLevel =
            ProcessInfo.processInfo.environment["VPP_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        var databaseConfiguration: PostgresConfiguration
        if let database {
            databaseConfiguration = database
        } else {
            databaseConfiguration = try await TestPostgres.makeDatabase(prefix: prefix, poolSize: poolSize)
        }
        databaseConfiguration.poolSize = poolSize
        let pool = PostgresPool(configuration: databaseConfiguration, logger: logger)
        let storage = Storage(pool: pool, logger: logger, tenantStateTTL: tenantStateTTL)
        try await storage.migrate(concurrency: 4)
        let operatorKey: String
        if let givenOperatorKey {
            operatorKey = givenOperatorKey
        } else {
            operatorKey = try await storage.apiKeys.create(kind: .operator, tenantID: nil, name: "test operator").secret
        }
        let authenticator = StorageAuthenticator(storage: storage, logger: logger, recheckInterval: keyRecheckInterval)
        var sync: SyncSystem?
        var httpClient: HTTPClient?
        var tokenServices: TokenServiceDependencies?
        var background: [Task<Void, any Error>] = []
        var notificationURL: String?
        let progress = JobProgressHub()
        if let apple {
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            httpClient = http
            let client = AppleVPPClient(
                httpClient: http,
                configuration: AppleVPPClientConfiguration(
                    baseURL: apple.baseURL,
                    retryPolicy: apple.retryPolicy,
                    requestTimeout: .seconds(10)
                ),
                logger: logger
            )
            let cipher = try TokenCipher(base64Key: TokenCipher.generateKeyText())
            if apple.notifications {
                // Issue 18: Apple's notifications come to a listener of this server, plain HTTP on loopback.
                let (ports, continuation) = AsyncStream<Int>.makeStream()
                let endpoint = NotificationEndpoint(
                    configuration: NotificationEndpointConfiguration(host: "127.0.0.1", port: 0),
                    tokens: TokenStore(storage: storage, cipher: cipher, logger: logger),
                    queue: JobQueue(pool: pool, logger: logger),
                    logger: logger
                ) { port in
                    continuation.yield(port)
                    continuation.finish()
                }
                background.append(Task { try await endpoint.run() })
                var iterator = ports.makeAsyncIterator()
                guard let port = await iterator.next() else {
                    throw RPCErrorForTests.missing("the notification listener did not start")
                }
                notificationURL = "http://127.0.0.1:\(port)\(NotificationEndpointConfiguration.defaultPath)"
            }
            let system = try await SyncSystem.make(
                storage: storage,
                cipher: cipher,
                apple: client,
                scheduleInterval: apple.scheduleInterval,
                eventPollInterval: apple.eventPollInterval,
                notificationURL: notificationURL,
                eventSignals: progress,
                notifiedPollInterval: apple.notifiedPollInterval,
                version: "test",
                logger: logger
            )
            sync = system
            tokenServices = TokenServiceDependencies(
                manager: system.manager,
                syncs: system.syncs,
                catalog: system.catalog,
                progress: progress,
                ledger: system.ledger,
                watchPollInterval: .milliseconds(200)
            )
            if apple.workers > 0 {
                let worker = JobWorker(
                    queue: system.queue,
                    handlers: system.handlers,
                    configuration: apple.workerConfiguration(),
                    logger: logger
                )
                background.append(Task { try await worker.run() })
            }
            if let tick = apple.schedulerTick {
                let scheduler = SyncScheduler(
                    storage: storage,
                    queue: system.queue,
                    interval: apple.scheduleInterval,
                    tick: tick,
                    logger: logger
                )
                background.append(Task { try await scheduler.run() })
            }
        }
        var listener: Task<Void, any Error>?
        let changeFeed = ChangeFeedHub(
            changeLog: storage.changeLog,
            configuration: changeFeedConfiguration,
            logger: logger
        )
        if listenForChanges || apple != nil {
            let changes = ChangeListener(
                configuration: databaseConfiguration,
                storage: storage,
                authenticator: authenticator,
                jobProgress: progress,
                changeFeed: changeFeed,
                logger: logger
            )
            listener = Task { try await changes.run() }
        }
        var configuration = ServerConfiguration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        let server = RPCServer(
            configuration: configuration,
            router: Services.makeRouter(
                storage: storage,
                authenticator: authenticator,
                tokens: tokenServices,
                directoryObserver: directoryObserver
                    ?? sync.map { LedgerDirectoryObserver(ledger: $0.ledger, syncs: $0.syncs, logger: logger) }
                    ?? NoDirectoryObserver(),
                changeFeed: changeFeed
            ),
            authenticator: authenticator,
            logger: logger,
            callLogLevel: .debug,
            errorMapper: ServiceErrorMapper.map
        )
        try await server.start()
        return TestVPPServer(
            database: databaseConfiguration,
            pool: pool,
            storage: storage,
            authenticator: authenticator,
            server: server,
            operatorKey: operatorKey,
            listener: listener,
            sync: sync,
            background: background,
            httpClient: httpClient,
            notificationURL: notificationURL,
            changeFeed: changeFeed
        )
    }

    public func client(key: String, reconnect: Bool = true) -> VPPClient {
        VPPClient(ClientConfiguration(host: "127.0.0.1", port: self.port, apiKey: key, reconnect: reconnect))
    }

    public func operatorClient() -> VPPClient {
        self.client(key: self.operatorKey)
    }

    /// Creates a tenant over RPC with a tenant key; returns the tenant and the key's secret.
    public func createTenant(
        _ name: String,
        configure: (inout VppV1.CreateTenantRequest) -> Void = { _ in }
    ) async throws -> (tenant: VppV1.Tenant, key: String) {
        var request = VppV1.CreateTenantRequest(displayName: name, initialKeyName: "admin tool")
        configure(&request)
        let client = self.operatorClient()
        let response: VppV1.CreateTenantResponse
        do {
            response = try await client.call(VppV1.OperatorService.CreateTenant.self, request)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
        guard let tenant = response.tenant, let secret = response.initialKey?.secret else {
            throw RPCErrorForTests.missing("CreateTenant answered without a tenant or key")
        }
        return (tenant, secret)
    }

    public func stop() async {
        self.listener?.cancel()
        for task in self.background { task.cancel() }
        for task in self.background { _ = await task.result }
        await self.server.shutdown(gracePeriod: .seconds(1))
        try? await self.httpClient?.shutdown()
        await self.pool.shutdown()
    }
}

/// How a test server talks to Apple (the simulator) and runs syncs.
public struct TestAppleOptions: Sendable {
    public var baseURL: String
    /// Sync workers to run in the server; 0 runs none (the test drives the queue itself).
    public var workers: Int
    /// R7's interval; short in tests of the schedule.
    public var scheduleInterval: Duration
    /// How often the scheduler looks for due tokens; nil runs no scheduler.
    public var schedulerTick: Duration?
    public var lease: Duration
    public var retryBase: Duration
    public var retryPolicy: RetryPolicy
    /// Issue 18: the server listens for Apple's notifications and registers every token for them.
    public var notifications: Bool
    /// Time between `/status` polls (50 ms: tests do not wait Apple's 30 s).
    public var eventPollInterval: Duration
    /// While notifications arrive, how long an event waits for one before it is polled.
    public var notifiedPollInterval: Duration

    public init(
        baseURL: String,
        workers: Int = 2,
        scheduleInterval: Duration = .seconds(12 * 3600),
        schedulerTick: Duration? = nil,
        lease: Duration = .seconds(30),
        retryBase: Duration = .milliseconds(200),
        retryPolicy: RetryPolicy = RetryPolicy(
            maxAttempts: 2,
            baseDelay: .milliseconds(10),
            maxDelay: .milliseconds(50),
            maxRetryAfter: .milliseconds(500)
        ),
        notifications: Bool = false,
        eventPollInterval: Duration = .milliseconds(50),
        notifiedPollInterval: Duration = .seconds(300)
    ) {
        self.notifications = notifications
        self.eventPollInterval = eventPollInterval
        self.notifiedPollInterval = notifiedPollInterval
        self.baseURL = baseURL
        self.workers = workers
        self.scheduleInterval = scheduleInterval
        self.schedulerTick = schedulerTick
        self.lease = lease
        self.retryBase = retryBase
        self.retryPolicy = retryPolicy
    }

    func workerConfiguration() -> JobWorkerConfiguration {
        var configuration = JobWorkerConfiguration(concurrency: workers)
        configuration.lease = lease
        configuration.pollInterval = .seconds(1)
        configuration.backoff = RetryBackoff(base: retryBase, cap: .seconds(2))
        return configuration
    }
}

public enum RPCErrorForTests: Error {
    case missing(String)
}
