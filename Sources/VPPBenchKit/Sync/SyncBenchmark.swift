import AppleVPP
import AppleVPPSimulator
import AsyncHTTPClient
import Foundation
import Logging
import VPPLoadKit
import VPPPostgres
import VPPStorage
import VPPServices
import VPPClock

/// One token's full sync (Apple → tenant schema) against the in-process simulator: `assets` apps, `assignments` device
/// licenses this service holds (so every one is reconciled, not just counted), timed phase by phase.
struct SyncBenchmark: SimulatedAppleBenchmark {
    var assets: Int
    var assignments: Int
    var runs: Int

    func measure(simulator: AppleVPPSimulator, storage: Storage, http: HTTPClient, logger: Logger) async throws
        -> SyncReport
    {
        try await storage.migrate(concurrency: 2)
        // The library: `assets` public apps, the assignments spread evenly over them.
        let perAsset = Int((Double(self.assignments) / Double(self.assets)).rounded(.up))
        let adamIDs = (0..<self.assets).map { String(2_000_000_000 + $0) }
        simulator.core.addPublicApps(
            adamIDs.map {
                ContentMetadata(
                    trackId: Int($0)!,
                    trackName: "Benchmark App \($0)",
                    bundleId: "bench.app\($0)",
                    kind: "software"
                )
            }
        )
        let location = try simulator.core.createLocation(
            .init(
                locationName: "Benchmark",
                assets: adamIDs.map { .init(adamId: $0, productType: .app, totalCount: perAsset + 10) }
            )
        )
        var serials: [(adamID: String, serial: String)] = []
        serials.reserveCapacity(self.assignments)
        for (index, adamID) in adamIDs.enumerated() {
            let count = min(perAsset, self.assignments - index * perAsset)
            guard count > 0 else { break }
            let prefix = "B\(index)-"
            try simulator.core.addDeviceAssignments(
                uId: location.uId,
                adamId: adamID,
                count: count,
                serialPrefix: prefix
            )
            for number in 0..<count { serials.append((adamID, prefix + "\(number)")) }
        }

        let (sync, tenantID, tokenID) = try await benchmarkTenant(
            name: "sync",
            simulator: simulator,
            vppToken: location.vppToken,
            storage: storage,
            http: http,
            logger: logger
        )
        // As if this service had assigned every one of these licenses.
        try await sync.syncStore.recordServiceAssignments(
            tenantID: tenantID,
            tokenID: tokenID,
            serials.map {
                SyncedAssignment(adamID: $0.adamID, pricingParam: "STDQ", clientUserID: "", serialNumber: $0.serial)
            }
        )

        var runs: [SyncReport.Run] = []
        for _ in 0..<self.runs {
            let phases = PhaseClock()
            let started = ContinuousClock.now
            let summary = try await sync.runner.run(
                tenantID: tenantID,
                tokenID: tokenID,
                jobID: UUID(),
                full: true
            ) { phase, _, _ in await phases.enter(phase.rawValue) }
            let seconds = (ContinuousClock.now - started).inSeconds
            guard summary.assignments == Int64(serials.count), summary.apps == self.assets else {
                throw SyncBenchmarkError(
                    "the sync reconciled \(summary.assignments) assignments and \(summary.apps) apps; expected \(serials.count) and \(self.assets)"
                )
            }
            runs.append(SyncReport.Run(seconds: seconds, phases: await phases.durations()))
        }
        try await storage.tenants.delete(tenantID)
        return SyncReport(
            assets: self.assets,
            assignments: serials.count,
            runs: runs,
            cores: ProcessInfo.processInfo.activeProcessorCount
        )
    }
}

/// A benchmark run against Apple's simulator in-process, with storage on a database of its own.
protocol SimulatedAppleBenchmark: Sendable {
    associatedtype Report: Sendable
    func measure(simulator: AppleVPPSimulator, storage: Storage, http: HTTPClient, logger: Logger) async throws
        -> Report
}

extension SimulatedAppleBenchmark {
    func run(database: PostgresConfiguration, logger: Logger) async throws -> Report {
        try await withSimulatedApple(database: database, logger: logger) { simulator, storage, http in
            try await self.measure(simulator: simulator, storage: storage, http: http, logger: logger)
        }
    }
}

/// Storage on `database`, an HTTP client, and Apple's simulator in-process, for the duration of `body`.
func withSimulatedApple<Result: Sendable>(
    database: PostgresConfiguration,
    logger: Logger,
    _ body: (AppleVPPSimulator, Storage, HTTPClient) async throws -> Result
) async throws -> Result {
    var database = database
    database.poolSize = max(database.poolSize, 8)
    let pool = PostgresPool(configuration: database, logger: logger)
    let storage = Storage(pool: pool, logger: logger)
    let http = HTTPClient(eventLoopGroupProvider: .singleton)
    do {
        let result = try await AppleVPPSimulator.withSimulator(logger: logger) { simulator in
            try await body(simulator, storage, http)
        }
        try await http.shutdown()
        await pool.shutdown()
        return result
    } catch {
        try? await http.shutdown()
        await pool.shutdown()
        throw error
    }
}

/// A sync system on simulated Apple, a new tenant and the location's token uploaded to it.
func benchmarkTenant(
    name: String,
    simulator: AppleVPPSimulator,
    vppToken: String,
    storage: Storage,
    http: HTTPClient,
    logger: Logger
) async throws -> (sync: SyncSystem, tenantID: UUID, tokenID: UUID) {
    let apple = AppleVPPClient(
        httpClient: http,
        configuration: AppleVPPClientConfiguration(baseURL: simulator.baseURL),
        logger: logger
    )
    let sync = try await SyncSystem.make(
        storage: storage,
        cipher: try TokenCipher(base64Key: TokenCipher.generateKeyText()),
        apple: apple,
        scheduleInterval: .seconds(12 * 3600),
        version: "benchmark",
        logger: logger
    )
    let tenant = try await storage.tenants.create(
        displayName: "\(name) benchmark \(UUID().uuidString.prefix(8))",
        tokenLimit: nil,
        organizationCreatedAt: nil,
        deviceGroupAssignment: false
    )
    let upload = try await sync.manager.upload(
        tenantID: tenant.id,
        file: Array(vppToken.utf8),
        appleID: "bench@example.com",
        accountType: .business,
        displayName: "",
        takeOver: false
    )
    return (sync, tenant.id, upload.token.id)
}

struct SyncBenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// When each phase of a sync started, to report how long each took.
actor PhaseClock {
    private var marks: [(String, ContinuousClock.Instant)] = []

    func enter(_ phase: String) {
        if marks.last?.0 != phase { marks.append((phase, .now)) }
    }

    func durations() -> [String: Double] {
        var result: [String: Double] = [:]
        for (index, mark) in marks.enumerated() where index + 1 < marks.count {
            result[mark.0, default: 0] += (marks[index + 1].1 - mark.1).inSeconds
        }
        return result
    }
}

struct SyncReport: Codable {
    struct Run: Codable {
        var seconds: Double
        var phases: [String: Double]
    }

    var assets: Int
    var assignments: Int
    var runs: [Run]
    var cores: Int

    var bestSeconds: Double { runs.map(\.seconds).min() ?? 0 }
    var rowsPerSecond: Double { Double(assets + assignments) / max(bestSeconds, 1e-9) }

    func json() throws -> String {
        struct Output: Codable {
            var assets: Int
            var assignments: Int
            var runs: [Run]
            var best_seconds: Double
            var rows_per_second: Double
            var cores: Int
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let output = Output(
            assets: assets,
            assignments: assignments,
            runs: runs,
            best_seconds: bestSeconds,
            rows_per_second: rowsPerSecond,
            cores: cores
        )
        return String(decoding: try encoder.encode(output), as: UTF8.self)
    }

    func human() -> String {
        var lines = [
            "Full sync of one token: \(assets) assets, \(assignments) assignments (this service's, all reconciled); \(cores) cores"
        ]
        for (index, run) in runs.enumerated() {
            let phases = ["client_config", "assets", "metadata", "users", "assignments", "reconcile"]
                .compactMap { name in run.phases[name].map { "\(name) \(String(format: "%.2f", $0)) s" } }
                .joined(separator: ", ")
            lines.append("  run \(index + 1): \(String(format: "%.2f", run.seconds)) s  (\(phases))")
        }
        lines.append(
            "  best: \(String(format: "%.2f", bestSeconds)) s, \(String(format: "%.0f", rowsPerSecond)) rows/s"
        )
        return lines.joined(separator: "\n")
    }
}
