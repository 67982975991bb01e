import AppleVPP
import AppleVPPSimulator
import Foundation
import Logging
import Testing
import VPPClient
import VPPPostgres
import VPPProto
import VPPTesting

/// Several vppd processes on one database (docs/scaling.md): the RPC servers are stateless, so either answers any
/// call, and the job queue (C6) runs every sync job once, whichever server queued it and however many workers race
/// for it.
@Suite("Two vppd processes, one database")
struct MultiServerTests {
    private static let pages = "408709785"

    @Test("C6: both servers serve calls, and every sync job, queued through either, runs exactly once")
    func twoServersOneDatabase() async throws {
        var logger = Logger(label: "test.simulator")
        logger.logLevel = .critical
        let fixture = SimulatorFixture(
            publicApps: [
                ContentMetadata(trackId: 408_709_785, trackName: "Pages", bundleId: "com.apple.Pages", kind: "software")
            ],
            locations: []
        )
        try await AppleVPPSimulator.withSimulator(fixture: fixture, logger: logger) { simulator in
            let database = try await TestPostgres.makeDatabase(prefix: "two_servers")
            let operatorKey = "op-" + (0..<4).map { _ in UUID().uuidString }.joined()
            let tokenKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VPP_") }
            environment["VPP_DATABASE_URL"] = Self.url(database)
            environment["VPP_TOKEN_KEY"] = tokenKey
            environment["VPP_BOOTSTRAP_OPERATOR_KEY"] = operatorKey
            environment["VPP_APPLE_BASE_URL"] = simulator.baseURL
            environment["VPP_SYNC_WORKERS"] = "2"
            environment["VPP_GAUGE_INTERVAL"] = "1s"
            environment["VPP_LOG_LEVEL"] = "notice"
            environment["VPP_DB_POOL_SIZE"] = "6"

            let vppd = try DaemonProcess.product("vppd")
            var servers: [(process: DaemonProcess, port: Int, metricsPort: Int)] = []
            defer {
                for server in servers where server.process.process.isRunning { server.process.process.terminate() }
            }
            for _ in 0..<2 {
                let (port, metricsPort) = (try await DaemonProcess.freePort(), try await DaemonProcess.freePort())
                var own = environment
                own["VPP_PORT"] = "\(port)"
                own["VPP_METRICS_PORT"] = "\(metricsPort)"
                let process = try DaemonProcess.start(vppd, ["serve"], environment: own)
                servers.append((process, port, metricsPort))
                try await process.waitUntilReady(metricsPort: metricsPort)
            }
            func client(_ server: Int, _ key: String) -> VPPClient {
                VPPClient(ClientConfiguration(host: "127.0.0.1", port: servers[server].port, apiKey: key))
            }

            // A tenant made through server 0; its key works on both.
            var create = VppV1.CreateTenantRequest()
            create.displayName = "Two Servers School"
            create.initialKeyName = "admin"
            create.tokenLimit = 10
            let operatorClient = client(0, operatorKey)
            let created = try await operatorClient.call(VppV1.OperatorService.CreateTenant.self, create)
            let key = try #require(created.initialKey?.secret)
            let tenants = [client(0, key), client(1, key)]

            // Six tokens, uploaded alternately through each server; each upload queues the first sync.
            var tokenIDs: [String] = []
            var jobIDs: Set<String> = []
            for index in 0..<6 {
                let location = try simulator.core.createLocation(
                    .init(
                        locationName: "Campus \(index)",
                        assets: [.init(adamId: Self.pages, productType: .app, totalCount: 10)]
                    )
                )
                var upload = VppV1.UploadTokenRequest()
                upload.tokenFile = Array(location.vppToken.utf8)
                upload.appleId = "admin\(index)@example.com"
                upload.accountType = .education
                let uploaded = try await tenants[index % 2].call(VppV1.TokenService.UploadToken.self, upload)
                tokenIDs.append(try #require(uploaded.token?.id))
                jobIDs.insert(uploaded.syncJobId)
            }
            try await Self.waitForIdleQueue(database)

            // Three rounds: every token's sync is asked for through both servers at once. A request while one is
            // queued or running joins it, so each round makes one job per token, or two when the first ended first.
            for _ in 0..<3 {
                try await withThrowingTaskGroup(of: String.self) { group in
                    for tokenID in tokenIDs {
                        for tenant in tenants {
                            group.addTask {
                                var request = VppV1.SyncTokenRequest()
                                request.tokenId = tokenID
                                return try await tenant.call(VppV1.SyncService.SyncToken.self, request).id
                            }
                        }
                    }
                    for try await id in group { jobIDs.insert(id) }
                }
                try await Self.waitForIdleQueue(database)
            }

            // Every sync job ran once: one attempt, succeeded, and one read of Apple's assets per job.
            let pool = PostgresPool(configuration: database, logger: logger)
            let jobs = try await pool.query(
                "SELECT id::text, state, attempt, coalesce(lease_owner, '') FROM vpp_control.jobs WHERE kind = 'sync'"
            ).map {
                (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1), try $0.decode(Int.self, at: 2))
            }
            await pool.shutdown()
            #expect(Set(jobs.map(\.0)) == jobIDs)
            #expect(jobs.allSatisfy { $0.1 == "succeeded" && $0.2 == 1 }, "\(jobs)")
            let assetReads = simulator.core.recordedRequests().filter {
                $0.method == "GET" && $0.path.hasSuffix("/assets")
            }
            #expect(assetReads.count == jobs.count, "one read of the assets per sync job")

            // Both servers answer every kind of call for the tenant, whichever server made the data.
            for tenant in tenants {
                let tokens = try await tenant.call(VppV1.TokenService.ListTokens.self, VppV1.ListTokensRequest()).tokens
                #expect(tokens.count == 6)
                #expect(tokens.allSatisfy { $0.appCount == 1 })
                var get = VppV1.GetSyncJobRequest()
                get.jobId = try #require(jobIDs.first)
                #expect(try await tenant.call(VppV1.SyncService.GetSyncJob.self, get).state == .succeeded)
            }

            // The fleet gauges read the shared database: each server reports all six tokens.
            for server in servers {
                let seen = try await Self.waitForMetric(
                    port: server.metricsPort,
                    line: "vpp_tokens{state=\"valid\"} 6.0"
                )
                #expect(seen, "\(server.process.log)")
            }

            await operatorClient.close()
            for tenant in tenants { await tenant.close() }
            for server in servers {
                let status = await server.process.stop()
                #expect(status == 0, "vppd stops cleanly on SIGTERM:\n\(server.process.log)")
            }
        }
    }

    static func url(_ configuration: PostgresConfiguration) -> String {
        let password =
            configuration.password.map { ":" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0) }
            ?? ""
        return
            "postgres://\(configuration.user)\(password)@\(configuration.host):\(configuration.port)/\(configuration.database)"
    }

    /// Waits until no sync or push job is queued, running or retrying.
    private static func waitForIdleQueue(_ database: PostgresConfiguration, timeout: Duration = .seconds(60))
        async throws
    {
        let pool = PostgresPool(configuration: database, logger: Logger(label: "test.queue"))
        defer { Task { await pool.shutdown() } }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let active = try await pool.query("SELECT count(*)::bigint FROM vpp_control.jobs WHERE finished_at IS NULL")
            if try active.first?.decode(Int.self, at: 0) == 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("jobs were still active after \(timeout)")
    }

    private static func waitForMetric(port: Int, line: String, timeout: Duration = .seconds(30)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            let (_, body) = try await DaemonProcess.httpGet(port: port, path: "/metrics")
            last = body
            if body.split(separator: "\n").contains(where: { $0 == line }) { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record(
            "/metrics on \(port) never showed \(line); last:\n\(last.split(separator: "\n").filter { $0.hasPrefix("vpp_tok") })"
        )
        return false
    }
}
