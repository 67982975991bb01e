import Foundation
import NIOConcurrencyHelpers
import ServiceLifecycle
import Testing
import VPPClock
import VPPJobs
import VPPPostgres
import VPPStorage
import VPPTestSupport
import VPPTesting

@Suite("Job worker (C6)", .timeLimit(.minutes(2)))
struct JobWorkerTests {
    private func states(_ fixture: QueueFixture) async throws -> [String: Int] {
        var states: [String: Int] = [:]
        for row in try await fixture.pool.query("SELECT state, count(*) FROM vpp_control.jobs GROUP BY state") {
            states[try row.decode(String.self, at: 0)] = try row.decode(Int.self, at: 1)
        }
        return states
    }

    @Test("C6: three workers on one database run every job exactly once")
    func severalWorkersEachJobOnce() async throws {
        let fixture = try await QueueFixture.make(poolSize: 10)
        let log = ExecutionLog()
        let handler = ClosureHandler { job, _ in
            log.record(job.id)
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...5)))
            return .succeeded(result: #"{"ran": true}"#)
        }
        let workers = (0..<3).map { _ in
            JobWorker(
                queue: fixture.queue,
                handlers: ["sync": handler],
                configuration: testConfiguration(),
                logger: quietLogger
            )
        }
        let tenants = [try await fixture.tenant("a"), try await fixture.tenant("b")]
        var ids: [UUID] = []
        for index in 0..<150 {
            ids.append(
                try await fixture.queue.enqueue(
                    NewJob(kind: "sync", tenantID: tenants[index % 2], subject: "s\(index)")
                ).job.id
            )
        }
        try await withWorkers(workers) {
            let done = await eventually { try await self.states(fixture)["succeeded"] == 150 }
            #expect(done)
        }
        #expect(ids.allSatisfy { log.count($0) == 1 })
        let attempts = try await fixture.pool.query("SELECT DISTINCT attempt FROM vpp_control.jobs")
            .map { try $0.decode(Int.self, at: 0) }
        #expect(attempts == [1])
        await fixture.shutdown()
    }

    @Test("C6: the job of a worker that died (no heartbeat, lease expired) is taken up by a live worker")
    func deadWorkersJobIsTakenUp() async throws {
        let fixture = try await QueueFixture.make()
        let job = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "s")).job
        // The "dead" worker claims it and is never heard of again.
        let dead = try await fixture.queue.claim(owner: "dead:1:x", kinds: ["sync"], limit: 1, lease: .seconds(1))
        #expect(dead.map(\.id) == [job.id])
        let worker = JobWorker(
            queue: fixture.queue,
            handlers: ["sync": ClosureHandler { _, _ in .succeeded(result: "{}") }],
            configuration: testConfiguration(pollInterval: .seconds(3600)),
            logger: quietLogger
        )
        try await withWorkers([worker]) {
            #expect(await eventually { try await fixture.job(job.id).state == .succeeded })
        }
        let done = try await fixture.job(job.id)
        #expect(done.attempt == 2)
        await fixture.shutdown()
    }

    @Test("C6: a handler that throws is retried after a backoff, then succeeds")
    func retryThenSuccess() async throws {
        let fixture = try await QueueFixture.make()
        let log = ExecutionLog()
        let worker = JobWorker(
            queue: fixture.queue,
            handlers: [
                "sync": ClosureHandler { job, _ in
                    log.record(job.id)
                    if job.attempt < 3 { throw TestError("Apple is down") }
                    return .succeeded(result: #"{"attempt": \#(job.attempt)}"#)
                }
            ],
            configuration: testConfiguration(pollInterval: .seconds(3600)),
            logger: quietLogger
        )
        let job = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "s")).job
        try await withWorkers([worker]) {
            #expect(await eventually { try await fixture.job(job.id).state == .succeeded })
        }
        let done = try await fixture.job(job.id)
        #expect(done.attempt == 3)
        #expect(done.error == "")
        #expect(done.result == #"{"attempt": 3}"#)
        #expect(log.count(job.id) == 3)
        await fixture.shutdown()
    }

    @Test("C6: a job that keeps failing ends failed after max_attempts")
    func maxAttemptsFails() async throws {
        let fixture = try await QueueFixture.make()
        let worker = JobWorker(
            queue: fixture.queue,
            handlers: ["sync": ClosureHandler { _, _ in throw TestError("token revoked") }],
            configuration: testConfiguration(),
            logger: quietLogger
        )
        let job = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "s", maxAttempts: 3)).job
        let explicit = try await fixture.queue.enqueue(NewJob(kind: "give-up", tenantID: nil, subject: "s")).job
        let giveUp = JobWorker(
            queue: fixture.queue,
            handlers: ["give-up": ClosureHandler { _, _ in .failed(error: "not a VPP token", result: #"{"why": 1}"#) }],
            configuration: testConfiguration(),
            logger: quietLogger
        )
        try await withWorkers([worker, giveUp]) {
            #expect(await eventually { try await fixture.job(job.id).state == .failed })
            #expect(await eventually { try await fixture.job(explicit.id).state == .failed })
        }
        let failed = try await fixture.job(job.id)
        #expect(failed.attempt == 3)
        #expect(failed.error == "token revoked")
        let gaveUp = try await fixture.job(explicit.id)
        #expect(gaveUp.attempt == 1)
        #expect(gaveUp.result == #"{"why": 1}"#)
        await fixture.shutdown()
    }

    @Test("C6: a retry-after given by the handler (returned or thrown) is honoured")
    func retryAfterHonoured() async throws {
        let fixture = try await QueueFixture.make()
        let worker = JobWorker(
            queue: fixture.queue,
            handlers: [
                "returns": ClosureHandler { _, _ in .retry(after: .seconds(120), error: "429") },
                "throws": ClosureHandler { _, _ in throw TestError("503", retryAfter: .seconds(300)) },
            ],
            configuration: testConfiguration(),
            logger: quietLogger
        )
        let before = Date()
        let returned = try await fixture.queue.enqueue(NewJob(kind: "returns", tenantID: nil, subject: "s")).job
        let thrown = try await fixture.queue.enqueue(NewJob(kind: "throws", tenantID: nil, subject: "s")).job
        try await withWorkers([worker]) {
            #expect(await eventually { try await fixture.job(returned.id).state == .retrying })
            #expect(await eventually { try await fixture.job(thrown.id).state == .retrying })
        }
        let first = try await fixture.job(returned.id)
        #expect(first.runAfter >= before.addingTimeInterval(120))
        #expect(first.error == "429")
        let second = try await fixture.job(thrown.id)
        #expect(second.runAfter >= before.addingTimeInterval(300))
        #expect(second.error == "503")
        await fixture.shutdown()
    }

    @Test("graceful shutdown gives running jobs back to the queue after the grace period; another worker runs them")
    func gracefulShutdownReleases() async throws {
        let fixture = try await QueueFixture.make()
        let started = ExecutionLog()
        let stubborn = JobWorker(
            queue: fixture.queue,
            handlers: [
                "sync": ClosureHandler { job, _ in
                    started.record(job.id)
                    try await Task.sleep(for: .seconds(3600))  // ends when cancelled
                    return .succeeded(result: "{}")
                }
            ],
            configuration: testConfiguration(shutdownGracePeriod: .milliseconds(200)),
            logger: quietLogger
        )
        let job = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "s")).job
        try await withWorkers([stubborn]) {
            #expect(await eventually { started.count(job.id) == 1 })
        }
        let released = try await fixture.job(job.id)
        #expect(released.state == .queued)
        #expect(released.attempt == 0)
        #expect(released.leaseOwner == nil)

        let quick = JobWorker(
            queue: fixture.queue,
            handlers: ["sync": ClosureHandler { _, _ in .succeeded(result: "{}") }],
            configuration: testConfiguration(pollInterval: .seconds(3600)),
            logger: quietLogger
        )
        try await withWorkers([quick]) {
            #expect(await eventually { try await fixture.job(job.id).state == .succeeded })
        }
        #expect(try await fixture.job(job.id).attempt == 1)
        await fixture.shutdown()
    }

    @Test("graceful shutdown lets a job that finishes within the grace period finish")
    func gracefulShutdownWaits() async throws {
        let fixture = try await QueueFixture.make()
        let started = ExecutionLog()
        let worker = JobWorker(
            queue: fixture.queue,
            handlers: [
                "sync": ClosureHandler { job, _ in
                    started.record(job.id)
                    try await Task.sleep(for: .milliseconds(500))
                    return .succeeded(result: "{}")
                }
            ],
            configuration: testConfiguration(shutdownGracePeriod: .seconds(30)),
            logger: quietLogger
        )
        let job = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "s")).job
        try await withWorkers([worker]) {
            #expect(await eventually { started.count(job.id) == 1 })
        }
        #expect(try await fixture.job(job.id).state == .succeeded)
        await fixture.shutdown()
    }

    @Test(
        "a running job cancelled in the queue is stopped at the next heartbeat (lease / 3 on the worker's clock), and stays cancelled"
    )
    func cancelledWhileRunning() async throws {
        let fixture = try await QueueFixture.make()
        let started = ExecutionLog()
        let stopped = ExecutionLog()
        let clock = ManualClock()
        let worker = JobWorker(
            queue: fixture.queue,
            handlers: [
                "sync": ClosureHandler { job, context in
                    started.record(job.id)
                    do {
                        try await Task.sleep(for: .seconds(3600))
                    } catch {
                        if context.isLeaseLost { stopped.record(job.id) }
                        throw error
                    }
                    return .succeeded(result: "{}")
                }
            ],
            configuration: testConfiguration(lease: .seconds(30)),
            clock: InstantClock(clock),
            logger: quietLogger
        )
        let job = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "token-1")).job
        try await withWorkers([worker]) {
            #expect(await eventually { started.count(job.id) == 1 })
            let cancelled = try await fixture.queue.cancelActive(
                kind: "sync",
                subject: "token-1",
                reason: "token deleted"
            )
            #expect(cancelled == 1)
            // The heartbeat loop sleeps from the worker's start: 10 s on the manual clock. Before they pass, the
            // handler runs on (the worker has not looked); once they have, the next heartbeat finds the lease gone.
            clock.advance(by: .seconds(9))
            try await Task.sleep(for: .milliseconds(100))
            #expect(stopped.count(job.id) == 0)
            clock.advance(by: .seconds(1))
            #expect(await eventually { stopped.count(job.id) == 1 })
        }
        let cancelled = try await fixture.job(job.id)
        #expect(cancelled.state == .cancelled)
        #expect(cancelled.error == "token deleted")
        await fixture.shutdown()
    }

    @Test("an idle worker wakes up on NOTIFY: a job queued long before the next poll runs promptly")
    func wakesOnNotify() async throws {
        let fixture = try await QueueFixture.make()
        let worker = JobWorker(
            queue: fixture.queue,
            handlers: ["sync": ClosureHandler { _, _ in .succeeded(result: "{}") }],
            configuration: testConfiguration(pollInterval: .seconds(3600)),
            logger: quietLogger
        )
        try await withWorkers([worker]) {
            // The first job proves the worker is up; afterwards it has nothing to do and sleeps (poll: an hour).
            let first = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "first")).job
            #expect(await eventually { try await fixture.job(first.id).state == .succeeded })
            try await Task.sleep(for: .milliseconds(300))
            let second = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "second")).job
            #expect(await eventually { try await fixture.job(second.id).state == .succeeded })
        }
        await fixture.shutdown()
    }

    @Test("progress reports are throttled, and the last one is always written")
    func progressLastOneWritten() async throws {
        let fixture = try await QueueFixture.make()
        let worker = JobWorker(
            queue: fixture.queue,
            handlers: [
                "sync": ClosureHandler { _, context in
                    for done in 1...500 { await context.progress(phase: "licenses", done: Int64(done), total: 500) }
                    return .succeeded(result: "{}")
                }
            ],
            configuration: testConfiguration(),
            logger: quietLogger
        )
        let job = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "s")).job
        try await withWorkers([worker]) {
            #expect(await eventually { try await fixture.job(job.id).state == .succeeded })
        }
        let done = try await fixture.job(job.id)
        #expect(done.phase == "licenses")
        #expect(done.itemsDone == 500)
        #expect(done.itemsTotal == 500)
        await fixture.shutdown()
    }

    @Test("retry backoff: full jitter under a doubling ceiling with a cap, never below the requested wait")
    func backoff() {
        let backoff = RetryBackoff(base: .seconds(5), cap: .seconds(60))
        #expect(backoff.ceiling(afterAttempt: 1) == .seconds(5))
        #expect(backoff.ceiling(afterAttempt: 2) == .seconds(10))
        #expect(backoff.ceiling(afterAttempt: 4) == .seconds(40))
        #expect(backoff.ceiling(afterAttempt: 5) == .seconds(60))
        #expect(backoff.ceiling(afterAttempt: 500) == .seconds(60))
        for attempt in 1...10 {
            let delay = backoff.delay(afterAttempt: attempt, requested: nil)
            #expect(delay >= .zero && delay <= backoff.ceiling(afterAttempt: attempt))
            #expect(backoff.delay(afterAttempt: attempt, requested: .seconds(600)) == .seconds(600))
            #expect(backoff.delay(afterAttempt: attempt, requested: .seconds(1)) >= .seconds(1))
        }
    }
}
