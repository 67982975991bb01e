import ArgumentParser
import Foundation
import Logging
import VPPLoadKit
import VPPPostgres

/// `vpp-load sync`: one token's full sync against the in-process Apple simulator, timed.
struct SyncCommand: LoadSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Time a full sync of one VPP token (assets, metadata, users, assignments, reconcile).",
        discussion: """
            Runs Apple's simulator in-process with --assets public apps and --assignments device licenses, uploads its \
            token to a new tenant, records every license as this service's own (so each one is reconciled), and times \
            --runs full syncs. Talks to PostgreSQL directly, not to a server. Without --database-url it starts a \
            throwaway embedded cluster (as the postgres user when run as root) and deletes it afterwards.
            Example: vpp-load sync --assets 1000 --assignments 100000
            """
    )

    @Option(
        name: .customLong("database-url"),
        help: "A scratch PostgreSQL database (postgres://…); default: a throwaway cluster."
    )
    var databaseURL: String?

    @Option(help: "Apps in the token's library.")
    var assets: Int = 1000

    @Option(help: "Device licenses, spread over the apps.")
    var assignments: Int = 100_000

    @Option(help: "Full syncs to time (the first reads everything new; later ones find it all in place).")
    var runs: Int = 2

    @Flag(
        name: .customLong("unsafe-fast-writes"),
        help: "Throwaway cluster only: fsync and synchronous_commit off. Default: durable commits."
    )
    var unsafeFastWrites = false

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    mutating func validate() throws {
        guard (1...100_000).contains(self.assets) else { throw ValidationError("--assets must be 1 to 100000.") }
        guard (0...5_000_000).contains(self.assignments) else {
            throw ValidationError("--assignments must be 0 to 5000000.")
        }
        guard (1...20).contains(self.runs) else { throw ValidationError("--runs must be 1 to 20.") }
        if self.databaseURL != nil && self.unsafeFastWrites {
            throw ValidationError("--unsafe-fast-writes applies to the throwaway cluster only, not to --database-url.")
        }
    }

    func execute() async throws {
        var logger = Logger(label: "vpp-load.sync")
        logger.logLevel = .warning
        let benchmark = SyncBenchmark(assets: self.assets, assignments: self.assignments, runs: self.runs)
        let report: SyncReport
        if let databaseURL {
            report = try await benchmark.run(database: try PostgresConfiguration(url: databaseURL), logger: logger)
        } else {
            report = try await ThrowawayCluster.with(
                name: "sync",
                unsafeFastWrites: self.unsafeFastWrites,
                logger: logger
            ) {
                try await benchmark.run(database: $0, logger: logger)
            }
        }
        print(self.json ? try report.json() : report.human())
    }
}

/// `vpp-load assign`: one app assigned to a big user group, timed until the ledger and the outbox are written.
struct AssignCommand: LoadSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "assign",
        abstract:
            "Time assigning an app to a group of many users, until every ledger entry and Apple change is queued.",
        discussion: """
            Runs Apple's simulator in-process, syncs a token whose apps each have --users licenses, writes --users \
            users in one group, then times --runs assignments (one app each) through the license ledger. Talks to \
            PostgreSQL directly. Without --database-url it starts a throwaway embedded cluster.
            Example: vpp-load assign --users 50000
            """
    )

    @Option(
        name: .customLong("database-url"),
        help: "A scratch PostgreSQL database (postgres://…); default: a throwaway cluster."
    )
    var databaseURL: String?

    @Option(help: "Users in the group.")
    var users: Int = 50_000

    @Option(help: "Assignments to time (one app each).")
    var runs: Int = 2

    @Flag(name: .customLong("unsafe-fast-writes"), help: "Throwaway cluster only: fsync and synchronous_commit off.")
    var unsafeFastWrites = false

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    mutating func validate() throws {
        guard (1...1_000_000).contains(self.users) else { throw ValidationError("--users must be 1 to 1000000.") }
        guard (1...10).contains(self.runs) else { throw ValidationError("--runs must be 1 to 10.") }
    }

    func execute() async throws {
        var logger = Logger(label: "vpp-load.assign")
        logger.logLevel = .warning
        let benchmark = AssignBenchmark(users: self.users, runs: self.runs)
        let report: AssignReport
        if let databaseURL {
            report = try await benchmark.run(database: try PostgresConfiguration(url: databaseURL), logger: logger)
        } else {
            report = try await ThrowawayCluster.with(
                name: "assign",
                unsafeFastWrites: self.unsafeFastWrites,
                logger: logger
            ) {
                try await benchmark.run(database: $0, logger: logger)
            }
        }
        print(self.json ? try report.json() : report.human())
    }
}

/// A PostgreSQL cluster in a new folder under /tmp (short, for the Unix socket, and traversable by the postgres user
/// when this runs as root), with one database, stopped and deleted afterwards.
enum ThrowawayCluster {
    static func with<Result>(
        name: String,
        unsafeFastWrites: Bool,
        logger: Logger,
        _ body: (PostgresConfiguration) async throws -> Result
    ) async throws -> Result {
        let directory = "/tmp/vpp-\(name)-bench-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(
            atPath: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o755]
        )
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cluster = try EmbeddedPostgres(
            options: .init(dataDirectory: directory + "/data", unsafeFastWrites: unsafeFastWrites, maxConnections: 300)
        )
        try await cluster.start()
        do {
            let database = "vpp_\(name)_bench"
            let admin = PostgresPool(configuration: cluster.configuration(), logger: logger)
            try await admin.simpleQuery("CREATE DATABASE \(try quoteIdentifier(database))")
            await admin.shutdown()
            let result = try await body(cluster.configuration(database: database))
            try await cluster.stop()
            return result
        } catch {
            try? await cluster.stop()
            throw error
        }
    }
}
