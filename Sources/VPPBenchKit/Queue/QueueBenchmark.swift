import Atomics
import Foundation
import Logging
import ServiceLifecycle
import VPPJobs
import VPPLoadKit
import VPPPostgres
import VPPStorage
import VPPClock

/// The job queue alone (C6), no RPC: producers enqueue no-op jobs while `JobWorker`s (each with a pool of its own,
/// like separate vppd processes) claim, run and finish them. Measures jobs per second through enqueue + claim +
/// succeed, and each job's time in the queue from the rows' own timestamps.
struct QueueBenchmark: Sendable {
    var jobs: Int
    var workers: Int
    var concurrency: Int
    var producers: Int
    /// Jobs per enqueue call: 1 is `enqueue(_:)`, more is `enqueue(_: [NewJob])`.
    var enqueueBatch: Int
    var tenants: Int
    var workerPoolSize: Int
    /// Finished jobs put in the table before the run, then ANALYZE: a queue that has been in use for a while, with
    /// statistics the planner can trust. (On a new, empty table the planner may pick sequential scans that a table
    /// with history never gets.)
    var history: Int
    /// Enqueue every job before the workers start, to time the two halves apart.
    var phased: Bool
    var timeout: Duration

    struct NoOp: JobHandler {
        let executions: ManagedAtomic<Int>
        func run(_ job: JobRecord, context: JobContext) async throws -> JobOutcome {
            self.executions.wrappingIncrement(ordering: .relaxed)
            return .succeeded(result: "{}")
        }
    }

    func run(database: PostgresConfiguration, logger: Logger) async throws -> QueueReport {
        var setupConfiguration = database
        setupConfiguration.poolSize = self.producers + 1
        let pool = PostgresPool(configuration: setupConfiguration, logger: logger)
        let storage = Storage(pool: pool, logger: logger)
        let queue = JobQueue(pool: pool, logger: logger)
        var tenantIDs: [UUID] = []
        var workerPools: [PostgresPool] = []
        do {
            try await storage.migrate(concurrency: 2)
            let runID = UUID().uuidString.prefix(8).lowercased()
            let kind = "bench.noop.\(runID)"
            for index in 0..<self.tenants {
                tenantIDs.append(
                    try await storage.tenants.create(
                        displayName: "queue-bench-\(runID)-\(index)",
                        tokenLimit: nil,
                        organizationCreatedAt: nil,
                        deviceGroupAssignment: false
                    ).id
                )
            }
            if self.history > 0 {
                try await pool.query(
                    """
                    INSERT INTO vpp_control.jobs
                        (id, kind, tenant_id, subject, state, attempt, queued_at, started_at, finished_at, updated_at)
                    SELECT gen_random_uuid(), \(kind + ".history"), (\(tenantIDs))[1 + g % greatest(1, \(tenantIDs.count))],
                           'history-' || g, 'succeeded', 1, now() - interval '1 day', now() - interval '1 day',
                           now() - interval '1 day', now() - interval '1 day'
                    FROM generate_series(1, \(self.history)) AS g
                    """
                )
                try await pool.query("VACUUM ANALYZE vpp_control.jobs")
            }
            let executions = ManagedAtomic(0)
            var workers: [JobWorker] = []
            for _ in 0..<self.workers {
                var configuration = database
                configuration.poolSize = self.workerPoolSize
                let workerPool = PostgresPool(configuration: configuration, logger: logger)
                workerPools.append(workerPool)
                workers.append(
                    JobWorker(
                        queue: JobQueue(pool: workerPool, logger: logger),
                        handlers: [kind: NoOp(executions: executions)],
                        configuration: JobWorkerConfiguration(concurrency: self.concurrency),
                        logger: logger
                    )
                )
            }
            let group = ServiceGroup(services: workers, logger: logger)

            let started = ContinuousClock.now
            var enqueued: ContinuousClock.Instant
            var workersStarted: ContinuousClock.Instant
            let finished: ContinuousClock.Instant
            let serviceTask: Task<Void, any Error>
            if self.phased {
                try await self.enqueueAll(queue: queue, kind: kind, runID: String(runID), tenants: tenantIDs)
                try await pool.query("VACUUM ANALYZE vpp_control.jobs")
                enqueued = .now
                workersStarted = .now
                serviceTask = Task { try await group.run() }
            } else {
                serviceTask = Task { try await group.run() }
                workersStarted = started
                try await self.enqueueAll(queue: queue, kind: kind, runID: String(runID), tenants: tenantIDs)
                enqueued = .now
            }
            do {
                finished = try await self.waitUntilDone(pool: pool, kind: kind, executions: executions)
            } catch {
                await group.triggerGracefulShutdown()
                _ = try? await serviceTask.value
                throw error
            }
            await group.triggerGracefulShutdown()
            try await serviceTask.value

            let stats = try await pool.query(
                """
                SELECT count(*) FILTER (WHERE attempt > 1),
                       percentile_cont(ARRAY[0.5, 0.9, 0.99, 1.0]) WITHIN GROUP
                           (ORDER BY extract(epoch FROM started_at - queued_at))::text,
                       percentile_cont(ARRAY[0.5, 0.9, 0.99, 1.0]) WITHIN GROUP
                           (ORDER BY extract(epoch FROM finished_at - queued_at))::text
                FROM vpp_control.jobs WHERE kind = \(kind)
                """
            ).single()
            func milliseconds(_ text: String) -> [Double] {
                text.trimmingCharacters(in: CharacterSet(charactersIn: "{}")).split(separator: ",")
                    .map { (Double($0) ?? 0) * 1000 }
            }
            let wait = milliseconds(try stats.decode(String.self, at: 1))
            let total = milliseconds(try stats.decode(String.self, at: 2))
            let reattempted = try stats.decode(Int.self, at: 0)
            let serverVersion = try await pool.query("SHOW server_version").single().decode(String.self, at: 0)
            let fsync = try await pool.query("SHOW fsync").single().decode(String.self, at: 0)
            let synchronousCommit = try await pool.query("SHOW synchronous_commit").single().decode(String.self, at: 0)

            // The run's jobs go with its tenants; jobs without a tenant (--tenants 0) are deleted by kind.
            try await pool.query("DELETE FROM vpp_control.jobs WHERE kind IN (\(kind), \(kind + ".history"))")
            for id in tenantIDs { try await storage.tenants.delete(id) }
            for workerPool in workerPools { await workerPool.shutdown() }
            await pool.shutdown()

            let elapsed = (finished - started).inSeconds
            let enqueueSeconds = (enqueued - started).inSeconds
            let drainSeconds = (finished - workersStarted).inSeconds
            return QueueReport(
                jobs: self.jobs,
                workers: self.workers,
                concurrency: self.concurrency,
                producers: self.producers,
                enqueueBatch: self.enqueueBatch,
                tenants: self.tenants,
                workerPoolSize: self.workerPoolSize,
                history: self.history,
                phased: self.phased,
                elapsedSeconds: elapsed,
                jobsPerSecond: Double(self.jobs) / elapsed,
                enqueueSeconds: enqueueSeconds,
                enqueuePerSecond: Double(self.jobs) / enqueueSeconds,
                drainSeconds: drainSeconds,
                drainPerSecond: Double(self.jobs) / drainSeconds,
                executions: executions.load(ordering: .relaxed),
                reattempted: reattempted,
                waitMilliseconds: .init(wait),
                queueToDoneMilliseconds: .init(total),
                postgres: "\(serverVersion), fsync=\(fsync), synchronous_commit=\(synchronousCommit)",
                cores: ProcessInfo.processInfo.activeProcessorCount
            )
        } catch {
            for workerPool in workerPools { await workerPool.shutdown() }
            await pool.shutdown()
            throw error
        }
    }

    /// `producers` tasks enqueue one job per call, spread round-robin over the tenants.
    private func enqueueAll(queue: JobQueue, kind: String, runID: String, tenants: [UUID]) async throws {
        let next = ManagedAtomic(0)
        let total = self.jobs
        let batch = self.enqueueBatch
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<self.producers {
                group.addTask {
                    while true {
                        let first = next.loadThenWrappingIncrement(by: batch, ordering: .relaxed)
                        guard first < total else { return }
                        let jobs = (first..<min(first + batch, total)).map { index in
                            NewJob(
                                kind: kind,
                                tenantID: tenants.isEmpty ? nil : tenants[index % tenants.count],
                                subject: "bench-\(runID)-\(index)",
                                trigger: "benchmark"
                            )
                        }
                        if jobs.count == 1 {
                            try await queue.enqueue(jobs[0])
                        } else {
                            _ = try await queue.enqueue(jobs)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Waits until every handler ran (an in-process counter, so the wait adds no load), then polls the count of
    /// succeeded jobs until the last success is written.
    private func waitUntilDone(
        pool: PostgresPool,
        kind: String,
        executions: ManagedAtomic<Int>
    ) async throws -> ContinuousClock.Instant {
        let deadline = ContinuousClock.now + self.timeout
        while executions.load(ordering: .relaxed) < self.jobs {
            guard ContinuousClock.now < deadline else {
                throw LoadError(
                    "only \(executions.load(ordering: .relaxed)) of \(self.jobs) jobs ran within \(self.timeout)"
                )
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        while true {
            let done = try await pool.query(
                "SELECT count(*) FROM vpp_control.jobs WHERE kind = \(kind) AND state = 'succeeded'"
            ).single().decode(Int.self, at: 0)
            if done >= self.jobs { return .now }
            guard ContinuousClock.now < deadline else {
                throw LoadError("only \(done) of \(self.jobs) jobs succeeded within \(self.timeout)")
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }
}

/// The figures of one queue run. JSON field names are stable (snake case), as in `Report`.
struct QueueReport: Sendable, Codable {
    struct Percentiles: Sendable, Codable {
        var p50: Double
        var p90: Double
        var p99: Double
        var max: Double

        init(_ values: [Double]) {
            let padded = values + Array(repeating: 0, count: Swift.max(0, 4 - values.count))
            (self.p50, self.p90, self.p99, self.max) = (padded[0], padded[1], padded[2], padded[3])
        }
    }

    var jobs: Int
    var workers: Int
    var concurrency: Int
    var producers: Int
    var enqueueBatch: Int
    var tenants: Int
    var workerPoolSize: Int
    var history: Int
    var phased: Bool
    /// From the first enqueue to the last job succeeded.
    var elapsedSeconds: Double
    /// Jobs through enqueue + claim + succeed, per second of `elapsedSeconds`.
    var jobsPerSecond: Double
    var enqueueSeconds: Double
    var enqueuePerSecond: Double
    /// From the workers' start to the last job succeeded.
    var drainSeconds: Double
    var drainPerSecond: Double
    /// Handler runs: equal to `jobs` when each job ran once.
    var executions: Int
    /// Jobs that needed more than one attempt (0 expected).
    var reattempted: Int
    /// queued_at to started_at.
    var waitMilliseconds: Percentiles
    /// queued_at to finished_at.
    var queueToDoneMilliseconds: Percentiles
    var postgres: String
    var cores: Int

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    func human() -> String {
        func f(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
        return """
            queue benchmark: \(self.jobs) no-op jobs, \(self.workers) workers × \(self.concurrency) concurrency \
            (pool \(self.workerPoolSize) each), \(self.producers) producers × \(self.enqueueBatch) jobs per enqueue, \
            \(self.tenants) tenants, \(self.history) finished jobs as history\
            \(self.phased ? ", enqueue first" : "")
              jobs/s (enqueue + claim + succeed)  \(f(self.jobsPerSecond, 0))   (\(f(self.elapsedSeconds, 2)) s)
              enqueue                             \(f(self.enqueuePerSecond, 0))/s (\(f(self.enqueueSeconds, 2)) s)
              drain (claim + run + succeed)       \(f(self.drainPerSecond, 0))/s (\(f(self.drainSeconds, 2)) s)
              queued → started (ms)               p50 \(f(self.waitMilliseconds.p50))  p90 \(f(self.waitMilliseconds.p90))  \
            p99 \(f(self.waitMilliseconds.p99))  max \(f(self.waitMilliseconds.max))
              queued → succeeded (ms)             p50 \(f(self.queueToDoneMilliseconds.p50))  \
            p90 \(f(self.queueToDoneMilliseconds.p90))  p99 \(f(self.queueToDoneMilliseconds.p99))  \
            max \(f(self.queueToDoneMilliseconds.max))
              handler runs \(self.executions), jobs with more than one attempt \(self.reattempted)
              PostgreSQL \(self.postgres); \(self.cores) cores
            """
    }
}
