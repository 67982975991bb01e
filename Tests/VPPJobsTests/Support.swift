import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import Testing
import VPPJobs
import VPPPostgres
import VPPStorage
import VPPTesting

let quietLogger: Logger = {
    var logger = Logger(label: "test.jobs")
    logger.logLevel = .critical
    return logger
}()

/// A fresh migrated database with a queue on it.
struct QueueFixture {
    let pool: PostgresPool
    let storage: Storage
    let queue: JobQueue

    static func make(prefix: String = #function, poolSize: Int = 6) async throws -> QueueFixture {
        let configuration = try await TestPostgres.makeDatabase(prefix: "jobs_" + prefix, poolSize: poolSize)
        let pool = PostgresPool(configuration: configuration, logger: quietLogger)
        let storage = Storage(pool: pool, logger: quietLogger)
        try await storage.migrate(concurrency: 1)
        return QueueFixture(pool: pool, storage: storage, queue: JobQueue(pool: pool, logger: quietLogger))
    }

    func tenant(_ name: String) async throws -> UUID {
        try await self.storage.tenants.create(
            displayName: name,
            tokenLimit: nil,
            organizationCreatedAt: nil,
            deviceGroupAssignment: false
        ).id
    }

    func job(_ id: UUID) async throws -> JobRecord {
        try #require(try await self.queue.get(id, tenantID: nil))
    }

    func shutdown() async {
        await self.pool.shutdown()
    }
}

/// A handler made of a closure.
struct ClosureHandler: JobHandler {
    let body: @Sendable (JobRecord, JobContext) async throws -> JobOutcome

    init(_ body: @escaping @Sendable (JobRecord, JobContext) async throws -> JobOutcome) {
        self.body = body
    }

    func run(_ job: JobRecord, context: JobContext) async throws -> JobOutcome {
        try await self.body(job, context)
    }
}

/// Counts how often each job ran.
final class ExecutionLog: Sendable {
    private let counts = NIOLockedValueBox<[UUID: Int]>([:])

    func record(_ id: UUID) {
        self.counts.withLockedValue { $0[id, default: 0] += 1 }
    }

    func count(_ id: UUID) -> Int { self.counts.withLockedValue { $0[id] ?? 0 } }
    var all: [UUID: Int] { self.counts.withLockedValue { $0 } }
}

struct TestError: Error, CustomStringConvertible, RetryAfterProviding {
    var description: String
    var retryAfter: Duration?

    init(_ description: String, retryAfter: Duration? = nil) {
        self.description = description
        self.retryAfter = retryAfter
    }
}

/// A worker configuration for tests: short intervals, so nothing waits long (the tests assert no timings).
func testConfiguration(
    concurrency: Int = 4,
    lease: Duration = .seconds(30),
    pollInterval: Duration = .seconds(1),
    backoff: RetryBackoff = RetryBackoff(base: .milliseconds(20), cap: .milliseconds(100)),
    shutdownGracePeriod: Duration = .seconds(5)
) -> JobWorkerConfiguration {
    JobWorkerConfiguration(
        concurrency: concurrency,
        lease: lease,
        pollInterval: pollInterval,
        backoff: backoff,
        shutdownGracePeriod: shutdownGracePeriod,
        progressInterval: .milliseconds(200),
        depthInterval: .seconds(1)
    )
}

/// Runs workers in a ServiceGroup while `body` runs, then shuts them down gracefully.
func withWorkers<Result: Sendable>(
    _ workers: [JobWorker],
    _ body: () async throws -> Result
) async throws -> Result {
    let group = ServiceGroup(services: workers, logger: quietLogger)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            let result = try await body()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
}
