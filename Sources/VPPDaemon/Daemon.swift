import AppleVPP
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import Prometheus
import ServiceLifecycle
import VPPJobs
import VPPLogKeys
import VPPNotifications
import VPPPostgres
import VPPServer
import VPPServices
import VPPStorage
import VPPSync

/// Starts everything `vppd serve` runs, in order, and stops it in reverse order on SIGTERM or SIGINT:
/// database (embedded or not) → connection pool and Apple's HTTP client → migrations → first operator key → change
/// listener, sync scheduler and worker, metrics endpoint, RPC server. The pool and the HTTP client are services of the
/// same `ServiceGroup` as the rest, listed first, so the group closes them last.
struct Daemon {
    static let version = "0.1.0"
    let settings: ResolvedSettings

    private static let loggingBootstrapped = NIOLockedValueBox(false)

    /// Bootstraps swift-log once per process, at the configured level, to standard error.
    static func makeLogger(_ settings: ResolvedSettings) -> Logger {
        let level = Logger.Level(rawValue: settings[.logLevel].lowercased()) ?? .info
        Self.loggingBootstrapped.withLockedValue { done in
            guard !done else { return }
            done = true
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
        var logger = Logger(label: "vppd")
        logger.logLevel = level
        return logger
    }

    func serverConfiguration() throws -> ServerConfiguration {
        let callDuration = try self.settings.duration(.maxCallDuration)
        let configuration = ServerConfiguration(
            host: self.settings[.host],
            port: try self.settings.int(.port, in: 0...65535),
            maxFrameBytes: try self.settings.int(.maxFrameBytes, in: 1024...(256 * 1024 * 1024)),
            frameBudgetBytes: try self.settings.int(.frameBudgetBytes, in: 1024...(64 * 1024 * 1024 * 1024)),
            maxCallsInFlight: try self.settings.int(.maxCallsInFlight, in: 1...65536),
            maxConnections: try self.settings.int(.maxConnections, in: 1...1_000_000),
            authenticationTimeout: try self.settings.duration(.authTimeout),
            idleTimeout: try self.settings.duration(.idleTimeout),
            maxCallDuration: callDuration == .zero ? nil : callDuration,
            shutdownGracePeriod: try self.settings.duration(.shutdownGrace),
            eventLoopThreads: try self.settings.int(.eventLoopThreads, in: 0...256),
            serverVersion: Self.version,
            tls: try self.settings.serverTLS()
        )
        try configuration.validate()
        return configuration
    }

    func run() async throws {
        let logger = Self.makeLogger(self.settings)
        guard let callLogLevel = Logger.Level(rawValue: self.settings[.callLogLevel].lowercased()) else {
            throw SettingsError(
                "VPP_CALL_LOG_LEVEL / --call-log-level must be trace, debug, info, notice, warning, error or critical."
            )
        }
        var serverConfiguration = try self.serverConfiguration()
        // Issue 16: never more connections than the descriptors allow (past the cap, clients hear CONNECTION_LIMIT).
        if let descriptors = DescriptorLimit.raise() {
            let poolSize = try self.settings.int(.databasePoolSize, in: 1...1024)
            let allowed = descriptors.connectionLimit(
                configured: serverConfiguration.maxConnections,
                databasePoolSize: poolSize
            )
            if allowed < serverConfiguration.maxConnections {
                logger.warning(
                    "The file-descriptor limit caps the RPC connections below --max-connections; raise the limit (ulimit -n, LimitNOFILE=) to allow more",
                    metadata: [
                        LogKey.descriptorLimit: "\(descriptors.soft)",
                        LogKey.maxConnections: "\(serverConfiguration.maxConnections)",
                        LogKey.connectionsAllowed: "\(allowed)",
                    ]
                )
                serverConfiguration.maxConnections = allowed
            } else {
                logger.info(
                    "File descriptors",
                    metadata: [LogKey.descriptorLimit: "\(descriptors.soft)", LogKey.maxConnections: "\(allowed)"]
                )
            }
        }
        let metricsPort = try self.settings.int(.metricsPort, in: 0...65535)
        let migrationConcurrency = try self.settings.int(.migrationConcurrency, in: 1...64)
        let syncWorkers = try self.settings.int(.syncWorkers, in: 0...256)
        let syncInterval = try self.settings.duration(.syncInterval)
        let gaugeInterval = try self.settings.duration(.gaugeInterval)
        guard gaugeInterval == .zero || gaugeInterval >= .seconds(1) else {
            throw SettingsError("VPP_GAUGE_INTERVAL must be 0 (off) or at least 1s.")
        }
        guard syncInterval >= .seconds(1) else { throw SettingsError("VPP_SYNC_INTERVAL must be at least 1s.") }
        let appleBaseURL = self.settings[.appleBaseURL]
        guard let appleURL = URL(string: appleBaseURL), ["http", "https"].contains(appleURL.scheme ?? "") else {
            throw SettingsError("VPP_APPLE_BASE_URL must be an http(s) URL; got \"\(appleBaseURL)\".")
        }
        guard let reclaim = LicenseLedger.ReclaimPolicy(rawValue: self.settings[.reclaimPolicy]) else {
            throw SettingsError("VPP_RECLAIM_POLICY must be immediate or after-removal.")
        }
        let cipher = try TokenKey.load(settings: self.settings, logger: logger)
        let notificationEndpoint = try self.settings.notificationEndpoint()
        let eventPollInterval = try self.settings.duration(.eventPollInterval)
        let notifiedPollInterval = try self.settings.duration(.notifiedPollInterval)
        guard eventPollInterval >= .seconds(1), notifiedPollInterval >= eventPollInterval else {
            throw SettingsError(
                "VPP_EVENT_POLL_INTERVAL must be at least 1s, and VPP_NOTIFIED_POLL_INTERVAL at least as long."
            )
        }

        let changeRetention = try self.settings.duration(.changeRetention)
        let changeMaintenance = try self.settings.duration(.changeMaintenanceInterval)
        guard changeRetention >= .seconds(60), changeMaintenance >= .seconds(1) else {
            throw SettingsError(
                "VPP_CHANGE_RETENTION must be at least 60s, VPP_CHANGE_MAINTENANCE_INTERVAL at least 1s."
            )
        }
        let changeFeedConfiguration = ChangeFeedHub.Configuration(
            maxBufferedPerWatcher: try self.settings.int(.changeWatchBuffer, in: 10...1_000_000),
            maxWatchers: try self.settings.int(.changeMaxWatchers, in: 1...1_000_000)
        )

        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let database = try await DatabaseRuntime.start(settings: self.settings, logger: logger)
        let pool = PostgresPool(configuration: database.configuration, logger: logger)
        let storage = Storage(pool: pool, logger: logger)
        let http = HTTPClientService()
        do {
            let started = ContinuousClock.now
            try await storage.migrate(concurrency: migrationConcurrency)
            logger.info("Schemas are up to date", metadata: [LogKey.took: "\(ContinuousClock.now - started)"])
            try await self.bootstrapOperatorKey(storage: storage, logger: logger)

            let authenticator = StorageAuthenticator(storage: storage, logger: logger)
            let apple = AppleVPPClient(
                httpClient: http.client,
                configuration: AppleVPPClientConfiguration(baseURL: appleBaseURL),
                logger: Logger(label: "vpp.apple", level: logger.logLevel)
            )
            let progress = JobProgressHub()
            let changeFeed = ChangeFeedHub(
                changeLog: storage.changeLog,
                configuration: changeFeedConfiguration,
                logger: Logger(label: "vpp.changes", level: logger.logLevel)
            )
            let notificationURL = self.settings[.notificationURL]
            let sync = try await SyncSystem.make(
                storage: storage,
                cipher: cipher,
                apple: apple,
                scheduleInterval: syncInterval,
                eventPollInterval: eventPollInterval,
                reclaim: reclaim,
                notificationURL: notificationURL.isEmpty ? nil : notificationURL,
                eventSignals: progress,
                notifiedPollInterval: notifiedPollInterval,
                version: Self.version,
                logger: logger
            )
            let router = Services.makeRouter(
                storage: storage,
                authenticator: authenticator,
                tokens: TokenServiceDependencies(
                    manager: sync.manager,
                    syncs: sync.syncs,
                    catalog: sync.catalog,
                    progress: progress,
                    ledger: sync.ledger
                ),
                directoryObserver: LedgerDirectoryObserver(ledger: sync.ledger, syncs: sync.syncs, logger: logger),
                changeFeed: changeFeed
            )
            let rpcServer = RPCServer(
                configuration: serverConfiguration,
                router: router,
                authenticator: authenticator,
                logger: Logger(label: "vpp.rpc", level: logger.logLevel),
                callLogLevel: callLogLevel,
                errorMapper: ServiceErrorMapper.map
            )
            var services: [any Service] = [
                ChangeListener(
                    configuration: database.configuration,
                    storage: storage,
                    authenticator: authenticator,
                    jobProgress: progress,
                    changeFeed: changeFeed,
                    logger: logger
                ),
                SyncScheduler(storage: storage, queue: sync.queue, interval: syncInterval, logger: logger),
                ChangeFeedMaintenance(
                    storage: storage,
                    retention: changeRetention,
                    interval: changeMaintenance,
                    logger: logger
                ),
            ]
            if let notificationEndpoint {
                services.append(
                    NotificationEndpoint(
                        configuration: notificationEndpoint,
                        tokens: sync.tokens,
                        queue: sync.queue,
                        logger: Logger(label: "vpp.notifications", level: logger.logLevel)
                    )
                )
            }
            if gaugeInterval > .zero {
                services.append(FleetGauges(storage: storage, interval: gaugeInterval, logger: logger))
            }
            if syncWorkers > 0 {
                services.append(
                    JobWorker(
                        queue: sync.queue,
                        handlers: sync.handlers,
                        configuration: JobWorkerConfiguration(concurrency: syncWorkers),
                        logger: Logger(label: "vpp.jobs", level: logger.logLevel)
                    )
                )
            }
            if metricsPort != 0 {
                services.append(
                    MetricsHTTPServer(
                        host: self.settings[.metricsHost],
                        port: metricsPort,
                        logger: logger,
                        render: { registry.emitToBuffer() },
                        ready: {
                            if rpcServer.isShuttingDown { return (false, "shutting down") }
                            do {
                                try await pool.query("SELECT 1")
                                return (true, "ready")
                            } catch {
                                return (false, "database unreachable")
                            }
                        }
                    )
                )
            }
            services.append(rpcServer)
            // The pool and the HTTP client outlive everything that uses them: the group shuts its services down in the
            // reverse order of its list, so they close after the inner group has stopped its services, gracefully or
            // (when one of them failed) by cancellation.
            let group = ServiceGroup(
                services: [pool, http, ServiceGroup(services: services, logger: logger)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                cancellationSignals: [],
                logger: logger
            )
            logger.info(
                "vppd started",
                metadata: [
                    LogKey.version: "\(Self.version)",
                    LogKey.rpc: "\(serverConfiguration.host):\(serverConfiguration.port)",
                ]
            )
            try await group.run()
        } catch {
            logger.error("vppd stopped with an error", metadata: [LogKey.error: "\(error)"])
            // When the setup failed, the group never ran them (else these find them shut down already).
            await http.shutdown()
            await pool.shutdown()
            await database.stop(logger: logger)
            throw error
        }
        await database.stop(logger: logger)
        logger.info("vppd stopped")
    }

    /// Creates the configured operator key at first start, when no operator key exists yet.
    private func bootstrapOperatorKey(storage: Storage, logger: Logger) async throws {
        let secret = self.settings[.bootstrapOperatorKey]
        guard !secret.isEmpty else {
            if try await storage.apiKeys.countActiveOperatorKeys() == 0 {
                logger.notice(
                    "No operator key exists yet: create one with `vppd admin create-operator-key` (or set VPP_BOOTSTRAP_OPERATOR_KEY)"
                )
            }
            return
        }
        if try await storage.apiKeys.find(secret: secret) != nil { return }
        guard try await storage.apiKeys.countActiveOperatorKeys() == 0 else {
            logger.notice("VPP_BOOTSTRAP_OPERATOR_KEY is ignored: operator keys exist already")
            return
        }
        let (key, _) = try await storage.apiKeys.create(
            kind: .operator,
            tenantID: nil,
            name: "bootstrap",
            secret: secret
        )
        logger.notice(
            "Created the bootstrap operator key",
            metadata: [LogKey.keyID: "\(key.id.uuidString.lowercased())"]
        )
    }
}

extension Logger {
    init(label: String, level: Logger.Level) {
        self.init(label: label)
        self.logLevel = level
    }
}
