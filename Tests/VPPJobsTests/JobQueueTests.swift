import Foundation
import Testing
import VPPJobs
import VPPPostgres
import VPPStorage
import VPPTestSupport
import VPPTesting

@Suite("Job queue (C6)", .timeLimit(.minutes(2)))
struct JobQueueTests {
    @Test("C6: enqueueing the same kind and subject joins the active job; once it finished, a new one is queued")
    func enqueueJoinsActive() async throws {
        let fixture = try await QueueFixture.make()
        let tenant = try await fixture.tenant("joins")
        let first = try await fixture.queue.enqueue(
            NewJob(kind: "sync", tenantID: tenant, subject: "token-1", trigger: "schedule", payload: #"{"a": 1}"#)
        )
        #expect(!first.joined)
        #expect(first.job.state == .queued)
        #expect(first.job.attempt == 0)
        #expect(first.job.trigger == "schedule")
        #expect(first.job.payload == #"{"a": 1}"#)
        let second = try await fixture.queue.enqueue(
            NewJob(kind: "sync", tenantID: tenant, subject: "token-1", trigger: "sync-now")
        )
        #expect(second.joined)
        #expect(second.job.id == first.job.id)
        #expect(second.job.trigger == "schedule")
        // Another kind or subject is another job.
        #expect(!(try await fixture.queue.enqueue(NewJob(kind: "other", tenantID: tenant, subject: "token-1"))).joined)
        #expect(!(try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: tenant, subject: "token-2"))).joined)

        let claimed = try await fixture.queue.claim(owner: "w", kinds: ["sync"], limit: 10, lease: .seconds(30))
        #expect(claimed.count == 2)
        // Running is active too: still joined.
        #expect(try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: tenant, subject: "token-1")).joined)
        #expect(try await fixture.queue.succeed(first.job.id, owner: "w", result: #"{"ok": true}"#))
        let third = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: tenant, subject: "token-1"))
        #expect(!third.joined)
        #expect(third.job.id != first.job.id)
        #expect(try await fixture.job(first.job.id).result == #"{"ok": true}"#)
        await fixture.shutdown()
    }

    @Test("C6: many concurrent enqueues of one subject make exactly one job")
    func concurrentEnqueues() async throws {
        let fixture = try await QueueFixture.make(poolSize: 8)
        let queue = fixture.queue
        for round in 0..<5 {
            let results = try await withThrowingTaskGroup(of: (UUID, Bool).self) { group in
                for _ in 0..<24 {
                    group.addTask {
                        let (job, joined) = try await queue.enqueue(
                            NewJob(kind: "sync", tenantID: nil, subject: "s\(round)")
                        )
                        return (job.id, joined)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(results.map(\.0)).count == 1)
            #expect(results.filter { !$0.1 }.count == 1)
        }
        let count = try await fixture.pool.query("SELECT count(*) FROM vpp_control.jobs").single().decode(
            Int.self,
            at: 0
        )
        #expect(count == 5)
        await fixture.shutdown()
    }

    @Test("C6: a batch enqueue joins active jobs and repeats within the batch, and ranks a tenant's jobs in order")
    func batchEnqueue() async throws {
        let fixture = try await QueueFixture.make()
        let tenant = try await fixture.tenant("batch")
        let existing = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: tenant, subject: "t0")).job
        let results = try await fixture.queue.enqueue([
            NewJob(kind: "sync", tenantID: tenant, subject: "t0"),
            NewJob(kind: "sync", tenantID: tenant, subject: "t1"),
            NewJob(kind: "sync", tenantID: nil, subject: "platform"),
            NewJob(kind: "sync", tenantID: tenant, subject: "t1"),
            NewJob(kind: "sync", tenantID: tenant, subject: "t2", payload: #"{"b": 2}"#),
        ])
        #expect(results.map(\.joined) == [true, false, false, true, false])
        #expect(results[0].job.id == existing.id)
        #expect(results[1].job.id == results[3].job.id)
        #expect(results[4].job.payload == #"{"b": 2}"#)
        #expect(results[2].job.tenantID == nil)
        let ranks = try await fixture.pool.query(
            "SELECT subject, fair_rank FROM vpp_control.jobs ORDER BY subject"
        ).map { (try $0.decode(String.self, at: 0), try $0.decode(Int.self, at: 1)) }
        #expect(ranks.map(\.0) == ["platform", "t0", "t1", "t2"])
        #expect(ranks.map(\.1) == [0, 0, 1, 2])
        await #expect(throws: JobQueueError.self) {
            try await fixture.queue.enqueue([NewJob(kind: "sync", tenantID: nil, subject: "x", payload: "nope")])
        }
        await fixture.shutdown()
    }

    @Test("invalid jobs are refused: bad JSON, unknown tenant, empty kind")
    func validation() async throws {
        let fixture = try await QueueFixture.make()
        await #expect(throws: JobQueueError.self) {
            try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "s", payload: "{not json"))
        }
        await #expect(throws: JobQueueError.self) {
            try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: UUID(), subject: "s"))
        }
        await #expect(throws: JobQueueError.self) {
            try await fixture.queue.enqueue(NewJob(kind: "", tenantID: nil, subject: "s"))
        }
        await fixture.shutdown()
    }

    @Test("C6: fairness: a tenant with one job is served among the first, before another tenant's backlog of 200")
    func fairAcrossTenants() async throws {
        let fixture = try await QueueFixture.make()
        let busy = try await fixture.tenant("busy")
        let quiet = try await fixture.tenant("quiet")
        for index in 0..<200 {
            try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: busy, subject: "busy-\(index)"))
        }
        let single = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: quiet, subject: "quiet-0")).job
        let first = try await fixture.queue.claim(owner: "w", kinds: ["sync"], limit: 3, lease: .seconds(30))
        #expect(first.contains { $0.id == single.id })
        #expect(first.allSatisfy { $0.state == .running && $0.attempt == 1 && $0.leaseOwner == "w" })
        await fixture.shutdown()
    }

    @Test("C6: several claimers at once never take the same job")
    func concurrentClaimsAreDisjoint() async throws {
        let fixture = try await QueueFixture.make(poolSize: 8)
        for index in 0..<300 {
            try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "s\(index)"))
        }
        let queue = fixture.queue
        let claimed = try await withThrowingTaskGroup(of: [UUID].self) { group in
            for worker in 0..<6 {
                group.addTask {
                    var mine: [UUID] = []
                    while true {
                        let batch = try await queue.claim(
                            owner: "w\(worker)",
                            kinds: ["sync"],
                            limit: 7,
                            lease: .seconds(30)
                        )
                        if batch.isEmpty { return mine }
                        mine += batch.map(\.id)
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(claimed.count == 300)
        #expect(Set(claimed).count == 300)
        await fixture.shutdown()
    }

    @Test("C6: a worker that lost its lease cannot overwrite the job: its succeed() is refused")
    func lostLeaseCannotOverwrite() async throws {
        let fixture = try await QueueFixture.make()
        let job = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "s")).job
        let stale = try await fixture.queue.claim(owner: "stale", kinds: ["sync"], limit: 1, lease: .seconds(1))
        #expect(stale.map(\.id) == [job.id])
        // Once the lease ran out, another worker takes the job over as its next attempt.
        var taken: [JobRecord] = []
        let tookOver = await eventually {
            taken = try await fixture.queue.claim(owner: "fresh", kinds: ["sync"], limit: 1, lease: .seconds(30))
            return !taken.isEmpty
        }
        #expect(tookOver)
        #expect(taken.first?.attempt == 2)
        #expect(try await !fixture.queue.heartbeat(job.id, owner: "stale", lease: .seconds(30)))
        #expect(try await !fixture.queue.succeed(job.id, owner: "stale", result: #"{"by": "stale"}"#))
        #expect(
            try await !fixture.queue.reportProgress(job.id, owner: "stale", phase: "x", itemsDone: 1, itemsTotal: 1)
        )
        #expect(try await fixture.queue.retry(job.id, owner: "stale", after: .zero, error: "x") == nil)
        #expect(try await !fixture.queue.fail(job.id, owner: "stale", error: "x"))
        #expect(try await !fixture.queue.release(job.id, owner: "stale"))
        let running = try await fixture.job(job.id)
        #expect(running.state == .running)
        #expect(running.leaseOwner == "fresh")
        #expect(try await fixture.queue.succeed(job.id, owner: "fresh", result: #"{"by": "fresh"}"#))
        let done = try await fixture.job(job.id)
        #expect(done.state == .succeeded)
        #expect(done.result == #"{"by": "fresh"}"#)
        #expect(done.leaseOwner == nil)
        await fixture.shutdown()
    }

    @Test("C6: retry waits, then fails once max_attempts is reached")
    func retryAndMaxAttempts() async throws {
        let fixture = try await QueueFixture.make()
        let job = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "s", maxAttempts: 2)).job
        _ = try await fixture.queue.claim(owner: "w", kinds: ["sync"], limit: 1, lease: .seconds(30))
        let before = Date()
        let retrying = try #require(
            try await fixture.queue.retry(job.id, owner: "w", after: .seconds(60), error: "Apple said 503")
        )
        #expect(retrying.state == .retrying)
        #expect(retrying.runAfter >= before.addingTimeInterval(59.9))
        #expect(retrying.error == "Apple said 503")
        // Not ready yet.
        #expect(try await fixture.queue.claim(owner: "w", kinds: ["sync"], limit: 1, lease: .seconds(30)).isEmpty)
        try await fixture.pool.query("UPDATE vpp_control.jobs SET run_after = now() WHERE id = \(job.id)")
        let second = try await fixture.queue.claim(owner: "w", kinds: ["sync"], limit: 1, lease: .seconds(30))
        #expect(second.first?.attempt == 2)
        let failed = try #require(try await fixture.queue.retry(job.id, owner: "w", after: .zero, error: "again"))
        #expect(failed.state == .failed)
        #expect(failed.finishedAt != nil)
        #expect(failed.error == "again")
        await fixture.shutdown()
    }

    @Test("release puts a running job back at once without counting the attempt")
    func release() async throws {
        let fixture = try await QueueFixture.make()
        let job = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "s")).job
        _ = try await fixture.queue.claim(owner: "w", kinds: ["sync"], limit: 1, lease: .seconds(30))
        #expect(try await fixture.queue.release(job.id, owner: "w"))
        let released = try await fixture.job(job.id)
        #expect(released.state == .queued)
        #expect(released.attempt == 0)
        #expect(released.leaseOwner == nil)
        #expect(
            try await fixture.queue.claim(owner: "w2", kinds: ["sync"], limit: 1, lease: .seconds(30)).first?.attempt
                == 1
        )
        await fixture.shutdown()
    }

    @Test("cancelActive cancels the queued or running job of a subject, and only that")
    func cancelActive() async throws {
        let fixture = try await QueueFixture.make()
        let job = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "token-1")).job
        let other = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "token-2")).job
        _ = try await fixture.queue.claim(owner: "w", kinds: ["sync"], limit: 2, lease: .seconds(30))
        #expect(try await fixture.queue.cancelActive(kind: "sync", subject: "token-1", reason: "token deleted") == 1)
        #expect(try await fixture.queue.cancelActive(kind: "sync", subject: "token-1", reason: "again") == 0)
        let cancelled = try await fixture.job(job.id)
        #expect(cancelled.state == .cancelled)
        #expect(cancelled.error == "token deleted")
        #expect(try await !fixture.queue.succeed(job.id, owner: "w", result: "{}"))
        #expect(try await !fixture.queue.heartbeat(job.id, owner: "w", lease: .seconds(30)))
        #expect(try await fixture.job(other.id).state == .running)
        await fixture.shutdown()
    }

    @Test("get() with another tenant's job id finds nothing; list pages newest first within a tenant")
    func tenantScopedReads() async throws {
        let fixture = try await QueueFixture.make()
        let alpha = try await fixture.tenant("alpha")
        let beta = try await fixture.tenant("beta")
        var alphaJobs: [UUID] = []
        for index in 0..<5 {
            alphaJobs.append(
                try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: alpha, subject: "a\(index)")).job.id
            )
        }
        let betaJob = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: beta, subject: "b0")).job
        #expect(try await fixture.queue.get(betaJob.id, tenantID: alpha) == nil)
        #expect(try await fixture.queue.get(betaJob.id, tenantID: beta)?.id == betaJob.id)
        #expect(try await fixture.queue.get(betaJob.id, tenantID: nil)?.id == betaJob.id)
        #expect(try await fixture.queue.get(UUID(), tenantID: nil) == nil)

        var listed: [UUID] = []
        var token: [String]?
        repeat {
            let page = try await fixture.queue.list(tenantID: alpha, pageSize: 2, after: token)
            #expect(page.jobs.count <= 2)
            listed += page.jobs.map(\.id)
            token = page.next
        } while token != nil
        #expect(listed == alphaJobs.reversed())
        let bySubject = try await fixture.queue.list(tenantID: nil, subject: "b0", pageSize: 10, after: nil)
        #expect(bySubject.jobs.map(\.id) == [betaJob.id])
        await #expect(throws: JobQueueError.self) {
            try await fixture.queue.list(tenantID: nil, pageSize: 10, after: ["x"])
        }
        await fixture.shutdown()
    }

    @Test("depth counts active jobs by kind and state; prune deletes old finished jobs only")
    func depthAndPrune() async throws {
        let fixture = try await QueueFixture.make()
        for index in 0..<3 {
            try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "s\(index)"))
        }
        try await fixture.queue.enqueue(NewJob(kind: "report", tenantID: nil, subject: "r"))
        let claimed = try await fixture.queue.claim(owner: "w", kinds: ["report"], limit: 1, lease: .seconds(30))
        var depth = try await fixture.queue.depth()
        #expect(depth.byKind["sync"]?[.queued] == 3)
        #expect(depth.byKind["report"]?[.running] == 1)
        #expect(depth.total[.queued] == 3)
        try await fixture.queue.succeed(try #require(claimed.first).id, owner: "w", result: "{}")
        depth = try await fixture.queue.depth()
        #expect(depth.byKind["report"] == nil)
        #expect(try await fixture.queue.prune(finishedBefore: Date().addingTimeInterval(-3600)) == 0)
        #expect(try await fixture.queue.prune(finishedBefore: Date().addingTimeInterval(60)) == 1)
        let left = try await fixture.pool.query("SELECT count(*) FROM vpp_control.jobs").single().decode(
            Int.self,
            at: 0
        )
        #expect(left == 3)
        await fixture.shutdown()
    }

    @Test("state changes are announced on the progress channel with the job's id")
    func progressNotifications() async throws {
        let fixture = try await QueueFixture.make()
        let listener = try PostgresListener(
            configuration: fixture.pool.configuration,
            channels: [JobQueue.progressChannel, JobQueue.channel],
            logger: quietLogger
        )
        var events = listener.events.makeAsyncIterator()
        #expect(await events.next() == .listening)
        let job = try await fixture.queue.enqueue(NewJob(kind: "sync", tenantID: nil, subject: "s")).job
        _ = try await fixture.queue.claim(owner: "w", kinds: ["sync"], limit: 1, lease: .seconds(30))
        try await fixture.queue.reportProgress(job.id, owner: "w", phase: "assets", itemsDone: 1, itemsTotal: 2)
        try await fixture.queue.succeed(job.id, owner: "w", result: "{}")
        var received: [PostgresNotification] = []
        while received.count < 5, case .notification(let notification)? = await events.next() {
            received.append(notification)
        }
        listener.stop()
        #expect(received.contains(PostgresNotification(channel: JobQueue.channel, payload: "sync")))
        let progress = received.filter { $0.channel == JobQueue.progressChannel }
        #expect(progress.count == 4)  // queued, running, progress, succeeded
        #expect(progress.allSatisfy { $0.payload == job.id.uuidString.lowercased() })
        await fixture.shutdown()
    }
}
