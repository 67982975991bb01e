import Foundation
import Logging
import VPPLogKeys
import VPPPostgres

/// The database vppd uses: the one at `--database-url`, or a cluster of its own in `--data-dir` (started before
/// everything else, stopped after everything else).
struct DatabaseRuntime {
    let configuration: PostgresConfiguration
    let embedded: EmbeddedPostgres?

    static let embeddedDatabase = "vpp"

    static func start(settings: ResolvedSettings, logger: Logger) async throws -> DatabaseRuntime {
        let poolSize = try settings.int(.databasePoolSize, in: 1...1000)
        let statementTimeout = try settings.duration(.databaseStatementTimeout)
        let url = settings[.databaseURL]
        if !url.isEmpty {
            var configuration = try PostgresConfiguration(url: url)
            configuration.poolSize = poolSize
            configuration.statementTimeout = statementTimeout
            configuration.applicationName = configuration.applicationName ?? "vppd"
            return DatabaseRuntime(configuration: configuration, embedded: nil)
        }
        let dataDirectory = URL(fileURLWithPath: settings[.dataDir]).standardizedFileURL.appendingPathComponent(
            "postgres"
        ).path
        logger.info(
            "No database URL set: running an embedded PostgreSQL cluster",
            metadata: [LogKey.dataDirectory: "\(dataDirectory)"]
        )
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        // A cluster already running in the data directory belongs to another vppd process (a server while this is an
        // admin command, or the reverse) or was left by one that crashed: use it as it is, and leave it running.
        var runningPort: Int?
        if let pid = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8) {
            let lines = pid.split(separator: "\n", omittingEmptySubsequences: false)
            if lines.count > 3 { runningPort = Int(lines[3].trimmingCharacters(in: .whitespaces)) }
        }
        let embedded = try EmbeddedPostgres(
            options: EmbeddedPostgres.Options(dataDirectory: dataDirectory, port: runningPort)
        )
        var owned = true
        if runningPort != nil, await embedded.isRunning() {
            logger.info(
                "Using the embedded PostgreSQL cluster that is already running",
                metadata: [LogKey.port: "\(embedded.port)"]
            )
            owned = false
        } else {
            try await embedded.start()
        }
        var configuration = embedded.configuration(database: "postgres")
        let exists = try await Self.withAdminPool(configuration) { pool in
            try await pool.query("SELECT 1 FROM pg_database WHERE datname = \(Self.embeddedDatabase)").count == 1
        }
        if !exists {
            try await Self.withAdminPool(configuration) { pool in
                try await pool.simpleQuery("CREATE DATABASE \(try quoteIdentifier(Self.embeddedDatabase))")
            }
        }
        configuration = embedded.configuration(database: Self.embeddedDatabase)
        configuration.poolSize = poolSize
        configuration.statementTimeout = statementTimeout
        configuration.applicationName = "vppd"
        return DatabaseRuntime(configuration: configuration, embedded: owned ? embedded : nil)
    }

    private static func withAdminPool<R>(
        _ configuration: PostgresConfiguration,
        _ body: (PostgresPool) async throws -> R
    )
        async throws -> R
    {
        var admin = configuration
        admin.poolSize = 1
        let pool = PostgresPool(configuration: admin)
        do {
            let result = try await body(pool)
            await pool.shutdown()
            return result
        } catch {
            await pool.shutdown()
            throw error
        }
    }

    func stop(logger: Logger) async {
        guard let embedded else { return }
        do {
            try await embedded.stop()
            logger.info("Embedded PostgreSQL cluster stopped")
        } catch {
            logger.error("Could not stop the embedded PostgreSQL cluster", metadata: [LogKey.error: "\(error)"])
        }
    }
}
