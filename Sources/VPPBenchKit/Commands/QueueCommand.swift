import ArgumentParser
import Foundation
import Logging
import VPPLoadKit
import VPPPostgres

/// `vpp-load queue`: the job queue alone (C6), straight against PostgreSQL.
struct QueueCommand: LoadSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Push no-op jobs through the job queue (enqueue, claim, succeed) and report jobs per second.",
        discussion: """
            Talks to PostgreSQL directly, not to a server. Without --database-url it starts a throwaway embedded \
            cluster in a temporary folder (as the postgres user when run as root) and deletes it afterwards. With \
            --database-url, use a scratch database: the run migrates it, creates --tenants tenants and its jobs, and \
            deletes them at the end. --producers tasks enqueue one job per call while --workers JobWorkers (each with \
            its own pool, like separate vppd processes) run them.
            Example: vpp-load queue --jobs 20000 --workers 2 --concurrency 32
            """
    )

    @Option(
        name: .customLong("database-url"),
        help: "A scratch PostgreSQL database (postgres://…); default: a throwaway cluster."
    )
    var databaseURL: String?

    @Option(help: "Jobs to push through.")
    var jobs: Int = 20000

    @Option(help: "JobWorkers, each with its own connection pool and listener.")
    var workers: Int = 2

    @Option(help: "Jobs each worker runs at once.")
    var concurrency: Int = 32

    @Option(help: "Tasks enqueueing jobs, one call per job.")
    var producers: Int = 4

    @Option(name: .customLong("enqueue-batch"), help: "Jobs per enqueue call (1: one statement per job).")
    var enqueueBatch: Int = 1

    @Option(help: "Tenants the jobs are spread over (0: jobs without a tenant).")
    var tenants: Int = 16

    @Option(name: .customLong("worker-pool-size"), help: "Connections in each worker's pool.")
    var workerPoolSize: Int = 3

    @Option(help: "Finished jobs put in the table first (then ANALYZE), as in a queue that has been in use a while.")
    var history: Int = 100_000

    @Flag(help: "Enqueue every job before the workers start, to time enqueueing and draining apart.")
    var phased = false

    @Flag(
        name: .customLong("unsafe-fast-writes"),
        help: "Throwaway cluster only: fsync and synchronous_commit off (what the tests use). Default: durable commits."
    )
    var unsafeFastWrites = false

    @Option(help: "Give up when the jobs are not done within this long, e.g. 5m.")
    var timeout: String = "10m"

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    mutating func validate() throws {
        guard (1...10_000_000).contains(self.jobs) else { throw ValidationError("--jobs must be 1 to 10000000.") }
        guard (1...64).contains(self.workers) else { throw ValidationError("--workers must be 1 to 64.") }
        guard (1...1024).contains(self.concurrency) else { throw ValidationError("--concurrency must be 1 to 1024.") }
        guard (1...256).contains(self.producers) else { throw ValidationError("--producers must be 1 to 256.") }
        guard (1...10_000).contains(self.enqueueBatch) else {
            throw ValidationError("--enqueue-batch must be 1 to 10000.")
        }
        guard (0...1000).contains(self.tenants) else { throw ValidationError("--tenants must be 0 to 1000.") }
        guard (0...10_000_000).contains(self.history) else { throw ValidationError("--history must be 0 to 10000000.") }
        guard (1...64).contains(self.workerPoolSize) else {
            throw ValidationError("--worker-pool-size must be 1 to 64.")
        }
        guard LoadDuration.parse(self.timeout).map({ $0 > .zero }) == true else {
            throw ValidationError("--timeout must be a positive duration such as 5m, not \(self.timeout).")
        }
        if self.databaseURL != nil && self.unsafeFastWrites {
            throw ValidationError("--unsafe-fast-writes applies to the throwaway cluster only, not to --database-url.")
        }
    }

    func execute() async throws {
        var logger = Logger(label: "vpp-load.queue")
        logger.logLevel = .warning
        let benchmark = QueueBenchmark(
            jobs: self.jobs,
            workers: self.workers,
            concurrency: self.concurrency,
            producers: self.producers,
            enqueueBatch: self.enqueueBatch,
            tenants: self.tenants,
            workerPoolSize: self.workerPoolSize,
            history: self.history,
            phased: self.phased,
            timeout: LoadDuration.parse(self.timeout) ?? .seconds(600)
        )
        let report: QueueReport
        if let databaseURL {
            report = try await benchmark.run(database: try PostgresConfiguration(url: databaseURL), logger: logger)
        } else {
            report = try await ThrowawayCluster.with(
                name: "queue",
                unsafeFastWrites: self.unsafeFastWrites,
                logger: logger
            ) { configuration in
                try await benchmark.run(database: configuration, logger: logger)
            }
        }
        print(self.json ? try report.json() : report.human())
        if report.executions != report.jobs || report.reattempted != 0 {
            throw ExitCode(1)
        }
    }
}
