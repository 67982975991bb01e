import Foundation
import Testing
import VPPJobs
import VPPPostgres

@Suite("Job lifecycle (C6): the queue's states and the edges its SQL follows", .timeLimit(.minutes(2)))
struct JobLifecycleTests {
    @Test("Every state is reachable from a new job, finished states are final, and every active one can be cancelled")
    func theMachinesShape() {
        let edges = JobLifecycle.edges
        var reached: Set<JobState> = []
        var frontier = edges.filter { $0.from == nil }.map(\.to)
        while let state = frontier.popLast() {
            guard reached.insert(state).inserted else { continue }
            frontier += edges.filter { $0.from == state }.map(\.to)
        }
        #expect(reached == Set(JobState.allCases))
        #expect(edges.filter { $0.from.map(JobLifecycle.finished.contains) ?? false }.isEmpty)
        for state in JobLifecycle.active {
            #expect(edges.contains(JobLifecycle.Edge(from: state, to: .cancelled)), "\(state) cannot be cancelled")
        }
        #expect(JobLifecycle.active == [.queued, .running, .retrying])
        // Only `enqueue` makes a job; every other event needs one.
        #expect(JobEvent.allCases.filter(\.from.isEmpty) == [.enqueue])
        // The queue's `retry` statement writes exactly these two states (its CASE), in this type's words.
        #expect(JobEvent.retry.to == [.retrying, .failed])
    }

    @Test(
        "C6: against a real database, every queue statement moves jobs only along the lifecycle's edges, and uses each"
    )
    func theSQLFollowsTheLifecycle() async throws {
        let fixture = try await QueueFixture.make()
        // A log of every change of state (or of attempt: a take-over stays 'running' but starts the next attempt).
        try await fixture.pool.query(
            "CREATE TABLE vpp_control.job_transition_log (from_state text, to_state text NOT NULL)"
        )
        try await fixture.pool.query(
            """
            CREATE FUNCTION vpp_control.log_job_transition() RETURNS trigger LANGUAGE plpgsql AS $fn$
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    INSERT INTO vpp_control.job_transition_log VALUES (NULL, NEW.state);
                ELSIF OLD.state <> NEW.state OR OLD.attempt <> NEW.attempt THEN
                    INSERT INTO vpp_control.job_transition_log VALUES (OLD.state, NEW.state);
                END IF;
                RETURN NULL;
            END
            $fn$
            """
        )
        try await fixture.pool.query(
            """
            CREATE TRIGGER log_job_transition AFTER INSERT OR UPDATE ON vpp_control.jobs
                FOR EACH ROW EXECUTE FUNCTION vpp_control.log_job_transition()
            """
        )
        let queue = fixture.queue
        func new(_ subject: String, maxAttempts: Int = 10) async throws -> UUID {
            try await queue.enqueue(NewJob(kind: "k", tenantID: nil, subject: subject, maxAttempts: maxAttempts)).job.id
        }
        func claim() async throws -> Set<UUID> {
            Set(try await queue.claim(owner: "w", kinds: ["k"], limit: 100, lease: .seconds(60)).map(\.id))
        }
        func expireLeases() async throws {
            try await fixture.pool.query(
                "UPDATE vpp_control.jobs SET lease_expires_at = now() - interval '1 second' WHERE state = 'running'"
            )
        }
        let succeeds = try await new("succeeds")
        let lastRetry = try await new("retries-on-its-last-attempt", maxAttempts: 1)
        let fails = try await new("fails")
        let released = try await new("released")
        _ = try await new("cancelled-while-running")
        let waitingCancelled = try await new("cancelled-while-retrying")
        #expect(try await claim().count == 6)
        #expect(try await queue.retry(succeeds, owner: "w", after: .zero, error: "once")?.state == .retrying)
        #expect(try await claim() == [succeeds])
        #expect(try await queue.succeed(succeeds, owner: "w", result: "{}"))
        #expect(try await queue.retry(lastRetry, owner: "w", after: .zero, error: "last")?.state == .failed)
        #expect(try await queue.fail(fails, owner: "w", error: "for good"))
        #expect(try await queue.release(released, owner: "w"))
        #expect(try await queue.cancelActive(kind: "k", subject: "released", reason: "gone") == 1)
        #expect(try await queue.cancelActive(kind: "k", subject: "cancelled-while-running", reason: "gone") == 1)
        #expect(
            try await queue.retry(waitingCancelled, owner: "w", after: .seconds(3600), error: "wait")?.state
                == .retrying
        )
        #expect(try await queue.cancelActive(kind: "k", subject: "cancelled-while-retrying", reason: "gone") == 1)
        // A worker that stops: its job is taken over while attempts are left, and fails when none are.
        let orphan = try await new("orphaned", maxAttempts: 2)
        #expect(try await claim() == [orphan])
        try await expireLeases()
        #expect(try await claim() == [orphan])
        try await expireLeases()
        #expect(try await claim().isEmpty)
        #expect(try await fixture.job(orphan).state == .failed)
        // Heartbeats and progress change neither state nor attempt.
        let beats = try await new("heartbeats")
        #expect(try await claim() == [beats])
        #expect(try await queue.heartbeat(beats, owner: "w", lease: .seconds(60)))
        #expect(try await queue.reportProgress(beats, owner: "w", phase: "p", itemsDone: 1, itemsTotal: 2))

        let rows = try await fixture.pool.query("SELECT from_state, to_state FROM vpp_control.job_transition_log")
        var seen: Set<JobLifecycle.Edge> = []
        for row in rows {
            let from = try row.decode(String?.self, at: 0).map { try #require(JobState(rawValue: $0)) }
            let to = try #require(JobState(rawValue: try row.decode(String.self, at: 1)))
            seen.insert(JobLifecycle.Edge(from: from, to: to))
        }
        #expect(
            seen.subtracting(JobLifecycle.edges).isEmpty,
            "edges the lifecycle does not have: \(seen.subtracting(JobLifecycle.edges))"
        )
        #expect(
            JobLifecycle.edges.subtracting(seen).isEmpty,
            "edges no statement took: \(JobLifecycle.edges.subtracting(seen))"
        )
        await fixture.shutdown()
    }
}
