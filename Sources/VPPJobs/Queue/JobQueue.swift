public import Foundation
public import Logging
public import VPPPostgres

/// The work queue in `vpp_control.jobs` (C6): every server sharing the database queues, claims and finishes jobs
/// through it, and PostgreSQL decides every race.
///
/// - Enqueueing joins the active job of the same (kind, subject) instead of queueing a second one (the partial unique
///   index `jobs_one_active_idx`).
/// - Claiming takes ready jobs with `FOR UPDATE SKIP LOCKED`, so concurrent workers never take the same job; the one
///   that claimed holds a lease it renews with `heartbeat`. A job whose lease expired (its worker died) is claimed
///   again by anyone.
/// - Every write of a running job names its owner (`lease_owner = owner AND state = 'running'`): a worker that lost
///   its lease cannot overwrite what the new owner (or a cancellation) wrote. Those calls return false then.
/// - Each change a watcher cares about NOTIFYs `progressChannel` with the job's id, in the same statement, so the
///   notification is sent exactly when the change commits.
public final class JobQueue: Sendable {
    /// NOTIFY on enqueue and release, payload the job's kind: idle workers wake up.
    public static let channel = "vpp_jobs"
    /// NOTIFY with the job's id whenever its state or progress changes.
    public static let progressChannel = "vpp_job_progress"
    /// fair_rank counts at most this many active jobs of a tenant: beyond that the tenant is simply busy, and counting
    /// further would cost each enqueue more than it tells (a count of 1,000 took 2.7 ms).
    static let fairRankCap = 64

    public let pool: PostgresPool
    let logger: Logger

    public init(pool: PostgresPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    // MARK: Rows

    /// `('queued', 'running', 'retrying')`: the predicate of `jobs_one_active_idx`, written in its order.
    static let activeStates = JobLifecycle.sqlList(JobLifecycle.active)

    /// `('running')`: the one state in which a job has a lease (heartbeats and progress renew or write it).
    static let leased = JobLifecycle.sqlList([.running])
    /// `('succeeded', 'failed', 'cancelled')`: what pruning deletes.
    static let finishedStates = JobLifecycle.sqlList(JobLifecycle.finished)
    /// The two ends of `retry`: waits for another attempt, or fails on the last.
    static let retryWaits = "'\(JobState.retrying.rawValue)'"
    static let retryFailed = "'\(JobState.failed.rawValue)'"

    static func columns(_ alias: String) -> String {
        [
            "id", "kind", "tenant_id", "subject", "state", "trigger", "payload", "attempt", "max_attempts", "run_after",
            "queued_at", "started_at", "finished_at", "lease_owner", "lease_expires_at", "phase", "items_done",
            "items_total", "error", "result", "updated_at",
        ].map { "\(alias).\($0)" }.joined(separator: ", ")
    }

    static func decode(_ row: PostgresRow) throws -> JobRecord {
        let stateText = try row.decode(String.self, at: 4)
        guard let state = JobState(rawValue: stateText) else {
            throw JobQueueError.internalInconsistency("A job has the unknown state \(stateText).")
        }
        return JobRecord(
            id: try row.decode(UUID.self, at: 0),
            kind: try row.decode(String.self, at: 1),
            tenantID: try row.decode(UUID?.self, at: 2),
            subject: try row.decode(String.self, at: 3),
            state: state,
            trigger: try row.decode(String.self, at: 5),
            payload: try row.decode(String.self, at: 6),
            attempt: try row.decode(Int.self, at: 7),
            maxAttempts: try row.decode(Int.self, at: 8),
            runAfter: try row.decode(Date.self, at: 9),
            queuedAt: try row.decode(Date.self, at: 10),
            startedAt: try row.decode(Date?.self, at: 11),
            finishedAt: try row.decode(Date?.self, at: 12),
            leaseOwner: try row.decode(String?.self, at: 13),
            leaseExpiresAt: try row.decode(Date?.self, at: 14),
            phase: try row.decode(String.self, at: 15),
            itemsDone: try row.decode(Int64.self, at: 16),
            itemsTotal: try row.decode(Int64.self, at: 17),
            error: try row.decode(String.self, at: 18),
            result: try row.decode(String.self, at: 19),
            updatedAt: try row.decode(Date.self, at: 20)
        )
    }

    /// SQL for the number of active jobs of the tenant `tenant` (a column reference written in code, never a value),
    /// counted up to `fairRankCap`. Two branches, because `tenant_id IS NOT DISTINCT FROM x` cannot use an index:
    /// `= x` and `IS NULL` both use jobs_active_tenant_idx (active is `finished_at IS NULL` there; see the migration),
    /// and CASE runs only the branch it needs.
    static func activeCount(_ tenant: String) -> String {
        func count(_ condition: String) -> String {
            "(SELECT count(*) FROM (SELECT 1 FROM vpp_control.jobs c WHERE \(condition) AND c.finished_at IS NULL "
                + "LIMIT \(Self.fairRankCap)) AS counted)"
        }
        return "(CASE WHEN \(tenant) IS NULL THEN \(count("c.tenant_id IS NULL")) "
            + "ELSE \(count("c.tenant_id = \(tenant)")) END)::integer"
    }

    static func validate(_ job: NewJob) throws {
        guard (1...64).contains(job.kind.count) else {
            throw JobQueueError.invalidArgument("A job's kind must be 1 to 64 characters.", field: "kind")
        }
        guard (1...512).contains(job.subject.count) else {
            throw JobQueueError.invalidArgument("A job's subject must be 1 to 512 characters.", field: "subject")
        }
        guard job.trigger.count <= 200 else {
            throw JobQueueError.invalidArgument("A job's trigger must be at most 200 characters.", field: "trigger")
        }
        guard (1...1000).contains(job.maxAttempts) else {
            throw JobQueueError.invalidArgument("A job's max_attempts must be 1 to 1000.", field: "max_attempts")
        }
    }

    /// Runs a statement, mapping the errors a caller can cause to `StorageError`.
    ///
    /// `relaxed` commits without waiting for the WAL flush (`synchronous_commit = off`). It is used for claims,
    /// heartbeats, progress and successes only: a crash can forget the last fraction of a second of those, which
    /// costs a job a re-run after its lease (jobs are written to be run again safely), never a lost job. Enqueues,
    /// retries and failures stay durable.
    private func run(
        _ query: PostgresQuery,
        on transaction: PostgresTransaction? = nil,
        jsonField: String = "payload",
        relaxed: Bool = false
    ) async throws -> PostgresRows {
        do {
            if let transaction { return try await transaction.query(query) }
            if relaxed {
                return try await self.pool.transaction { transaction in
                    try await transaction.simpleQuery("SET LOCAL synchronous_commit = off")
                    return try await transaction.query(query)
                }
            }
            return try await self.pool.query(query)
        } catch let error as PostgresError where error.sqlState == "22P02" || error.sqlState == "22032" {
            throw JobQueueError.invalidArgument("The job's \(jsonField) is not valid JSON.", field: jsonField)
        } catch let error as PostgresError where error.kind == .foreignKeyViolation {
            throw JobQueueError.notFound("The job's tenant does not exist.")
        }
    }

    // MARK: Enqueue

    /// Queues a job, or joins the active one of the same (kind, subject): `joined` is true when the job returned is
    /// one that was already queued or running (its payload and trigger are not changed).
    @discardableResult
    public func enqueue(_ job: NewJob) async throws -> (job: JobRecord, joined: Bool) {
        try await self.enqueue(job, on: nil)
    }

    /// `enqueue` inside the caller's transaction: the job exists (and the workers hear of it) only if it commits.
    @discardableResult
    public func enqueue(_ job: NewJob, in transaction: PostgresTransaction) async throws -> (
        job: JobRecord, joined: Bool
    ) {
        try await self.enqueue(job, on: transaction)
    }

    private func enqueue(_ job: NewJob, on transaction: PostgresTransaction?) async throws -> (
        job: JobRecord, joined: Bool
    ) {
        try Self.validate(job)
        // C6: one active job per (kind, subject). The INSERT skips when the partial unique index already holds an
        // active job; the SELECT then returns that one. Both run in one statement, so they share one snapshot: when
        // the conflicting job was committed by another session after the snapshot, or finished in between, neither
        // returns a row, and the next round (a new statement, a new snapshot) settles it.
        for _ in 0..<20 {
            let rows = try await self.run(
                """
                WITH rank AS (
                    SELECT \(unescaped: Self.activeCount("p.tenant_id")) AS n FROM (SELECT \(job.tenantID)::uuid AS tenant_id) AS p
                ), inserted AS (
                    INSERT INTO vpp_control.jobs
                        (id, kind, tenant_id, subject, state, trigger, fair_rank, payload, max_attempts, run_after,
                         queued_at, updated_at)
                    SELECT \(UUID()), \(job.kind), \(job.tenantID), \(job.subject), \(unescaped: JobEvent.enqueue.sqlTo), \(job.trigger), rank.n,
                           \(job.payload)::jsonb, \(job.maxAttempts), coalesce(\(job.runAfter), clock_timestamp()),
                           clock_timestamp(), clock_timestamp()
                    FROM rank
                    ON CONFLICT (kind, subject) WHERE state IN \(unescaped: Self.activeStates) DO NOTHING
                    RETURNING *, pg_notify(\(Self.channel), kind), pg_notify(\(Self.progressChannel), id::text)
                )
                SELECT \(unescaped: Self.columns("i")), true FROM inserted i
                UNION ALL
                SELECT \(unescaped: Self.columns("j")), false FROM vpp_control.jobs j
                WHERE j.kind = \(job.kind) AND j.subject = \(job.subject) AND j.state IN \(unescaped: Self.activeStates)
                  AND NOT EXISTS (SELECT 1 FROM inserted)
                """,
                on: transaction
            )
            if let row = rows.first {
                return (try Self.decode(row), !(try row.decode(Bool.self, at: 21)))
            }
            // Inside a caller's transaction (READ COMMITTED) the next statement takes a new snapshot too.
        }
        throw JobQueueError.internalInconsistency(
            "Could not queue or join a \(job.kind) job for \(job.subject): it kept changing state; try again."
        )
    }

    /// Queues many jobs in one statement (a scheduler's round of due syncs): the result matches `jobs` one to one,
    /// with the same joining rule as `enqueue(_:)`. Within the batch, a repeated (kind, subject) joins its first
    /// occurrence. fair_rank counts the tenant's active jobs plus its jobs earlier in the batch.
    public func enqueue(_ jobs: [NewJob]) async throws -> [(job: JobRecord, joined: Bool)] {
        for job in jobs { try Self.validate(job) }
        struct Key: Hashable {
            var kind: String
            var subject: String
        }
        var found: [Key: (job: JobRecord, inserted: Bool)] = [:]
        var missing = Array(jobs.indices)
        for _ in 0..<20 where !missing.isEmpty {
            var seen = Set<Key>()
            let batch = missing.map { jobs[$0] }.filter {
                seen.insert(Key(kind: $0.kind, subject: $0.subject)).inserted
            }
            // As in `enqueue(_:)`, one statement: rows whose conflicting job this snapshot cannot see come back
            // missing, and go round again.
            let rows = try await self.run(
                """
                WITH input AS (
                    SELECT * FROM unnest(
                        \(batch.map { _ in UUID() }), \(batch.map(\.kind)), \(batch.map(\.tenantID)),
                        \(batch.map(\.subject)), \(batch.map(\.trigger)), \(batch.map(\.payload)),
                        \(batch.map(\.maxAttempts)), \(batch.map(\.runAfter))
                    ) WITH ORDINALITY AS i (id, kind, tenant_id, subject, trigger, payload, max_attempts, run_after, n)
                ), active AS MATERIALIZED (
                    SELECT t.tenant_id, \(unescaped: Self.activeCount("t.tenant_id")) AS n
                    FROM (SELECT DISTINCT tenant_id FROM input) AS t
                ), inserted AS (
                    INSERT INTO vpp_control.jobs
                        (id, kind, tenant_id, subject, state, trigger, fair_rank, payload, max_attempts, run_after,
                         queued_at, updated_at)
                    SELECT i.id, i.kind, i.tenant_id, i.subject, \(unescaped: JobEvent.enqueue.sqlTo), i.trigger,
                           least(a.n + row_number() OVER (PARTITION BY i.tenant_id ORDER BY i.n) - 1, \(Self.fairRankCap)),
                           i.payload::jsonb, i.max_attempts, coalesce(i.run_after, clock_timestamp()),
                           clock_timestamp(), clock_timestamp()
                    FROM input i JOIN active a ON a.tenant_id IS NOT DISTINCT FROM i.tenant_id
                    -- Jobs that will join an active one do not count towards the rank of the tenant's others. (A
                    -- lateral probe rather than NOT EXISTS: it stays an index lookup whatever the statistics say.)
                    LEFT JOIN LATERAL (
                        SELECT true AS taken FROM vpp_control.jobs j
                        WHERE j.kind = i.kind AND j.subject = i.subject AND j.state IN \(unescaped: Self.activeStates)
                        LIMIT 1
                    ) AS existing ON true
                    WHERE existing.taken IS NULL
                    ORDER BY i.n
                    ON CONFLICT (kind, subject) WHERE state IN \(unescaped: Self.activeStates) DO NOTHING
                    RETURNING *, pg_notify(\(Self.channel), kind), pg_notify(\(Self.progressChannel), id::text)
                )
                SELECT \(unescaped: Self.columns("i")), true FROM inserted i
                UNION ALL
                SELECT \(unescaped: Self.columns("j")), false
                FROM (SELECT * FROM input i WHERE NOT EXISTS (
                          SELECT 1 FROM inserted x WHERE x.kind = i.kind AND x.subject = i.subject)) AS i
                CROSS JOIN LATERAL (
                    -- One probe of jobs_one_active_idx per job not inserted.
                    SELECT * FROM vpp_control.jobs j
                    WHERE j.kind = i.kind AND j.subject = i.subject AND j.state IN \(unescaped: Self.activeStates)
                ) AS j
                """
            )
            for row in rows {
                let job = try Self.decode(row)
                found[Key(kind: job.kind, subject: job.subject)] = (job, try row.decode(Bool.self, at: 21))
            }
            missing = missing.filter { found[Key(kind: jobs[$0].kind, subject: jobs[$0].subject)] == nil }
        }
        guard missing.isEmpty else {
            throw JobQueueError.internalInconsistency(
                "Could not queue or join \(missing.count) jobs: they kept changing state; try again."
            )
        }
        var firstSeen = Set<Key>()
        return jobs.map { job in
            let key = Key(kind: job.kind, subject: job.subject)
            let (record, inserted) = found[key]!
            return (record, !(inserted && firstSeen.insert(key).inserted))
        }
    }

    // MARK: Claim and lease

    /// Claims up to `limit` jobs of `kinds` for `owner`, holding each for `lease` (renew with `heartbeat`).
    ///
    /// Takes ready jobs (queued or retrying, `run_after` passed) and jobs whose lease expired (a worker that stopped
    /// heartbeating: C6, its job is taken up again as the next attempt); an expired job with no attempts left fails
    /// instead. Ready jobs go in `fair_rank` order, then `run_after`: fair_rank is the tenant's count of active jobs when
    /// the job was queued (up to 64), so a tenant's first job goes before another tenant's 200th. Each claimed job is
    /// `running` with `attempt` one higher. The order of the result is unspecified.
    public func claim(owner: String, kinds: [String], limit: Int, lease: Duration) async throws -> [JobRecord] {
        guard limit > 0, !kinds.isEmpty else { return [] }
        // C6: SKIP LOCKED is what lets many workers claim at once without waiting for, or taking, each other's rows.
        // Rows locked by `ready` beyond the final LIMIT are let go when the statement ends. The conditions compare with
        // now() (the statement's start), not clock_timestamp(): a stable value is an index condition, a volatile one
        // a filter over every running job.
        let rows = try await self.run(
            """
            WITH dead AS (
                UPDATE vpp_control.jobs
                SET state = \(unescaped: JobEvent.leaseLostOnLastAttempt.sqlTo), finished_at = clock_timestamp(),
                    updated_at = clock_timestamp(),
                    error = 'The worker running the last allowed attempt stopped (its lease expired).',
                    lease_owner = NULL, lease_expires_at = NULL
                WHERE state IN \(unescaped: JobEvent.leaseLostOnLastAttempt.sqlFrom) AND lease_expires_at < now()
                  AND attempt >= max_attempts
                  AND kind = ANY(\(kinds))
                RETURNING pg_notify(\(Self.progressChannel), id::text)
            ), expired AS (
                SELECT id, lease_expires_at AS ready_at, 0 AS tier, 0 AS fair_rank FROM vpp_control.jobs
                WHERE state IN \(unescaped: JobEvent.takeOver.sqlFrom) AND lease_expires_at < now() AND attempt < max_attempts
                  AND kind = ANY(\(kinds))
                ORDER BY lease_expires_at
                LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            ), ready AS (
                SELECT id, run_after AS ready_at, 1 AS tier, fair_rank FROM vpp_control.jobs
                WHERE state IN \(unescaped: JobEvent.claim.sqlFrom) AND run_after <= now() AND kind = ANY(\(kinds))
                ORDER BY fair_rank, run_after
                LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            ), picked AS (
                SELECT id, ready_at FROM (SELECT * FROM expired UNION ALL SELECT * FROM ready) AS candidates
                ORDER BY tier, fair_rank, ready_at
                LIMIT \(limit)
            )
            UPDATE vpp_control.jobs j
            SET state = \(unescaped: JobEvent.claim.sqlTo), attempt = j.attempt + 1, lease_owner = \(owner),
                lease_expires_at = clock_timestamp() + \(lease.queueMilliseconds) * interval '1 millisecond',
                started_at = clock_timestamp(), run_after = picked.ready_at, finished_at = NULL,
                updated_at = clock_timestamp()
            FROM picked
            WHERE j.id = picked.id
            RETURNING \(unescaped: Self.columns("j")), pg_notify(\(Self.progressChannel), j.id::text)
            """,
            relaxed: true
        )
        return try rows.map(Self.decode)
    }

    /// Renews the lease of a running job. False when the lease is lost: another worker took the job over, or it was
    /// cancelled or released; the caller must stop working on it and write nothing.
    public func heartbeat(_ id: UUID, owner: String, lease: Duration) async throws -> Bool {
        try await self.heartbeat([id], owner: owner, lease: lease).contains(id)
    }

    /// Renews the leases of several running jobs in one statement; returns the ids whose lease is still held.
    public func heartbeat(_ ids: [UUID], owner: String, lease: Duration) async throws -> Set<UUID> {
        guard !ids.isEmpty else { return [] }
        // Rows are locked in id order, as in `succeed(_:owner:)`, so two multi-row writes of one owner cannot deadlock.
        let rows = try await self.run(
            """
            WITH mine AS (
                SELECT id FROM vpp_control.jobs
                WHERE id = ANY(\(ids)) AND lease_owner = \(owner) AND state IN \(unescaped: Self.leased)
                ORDER BY id
                FOR UPDATE
            )
            UPDATE vpp_control.jobs j
            SET lease_expires_at = clock_timestamp() + \(lease.queueMilliseconds) * interval '1 millisecond'
            FROM mine
            WHERE j.id = mine.id
            RETURNING j.id
            """,
            relaxed: true
        )
        return Set(try rows.map { try $0.decode(UUID.self, at: 0) })
    }

    /// Records a running job's progress. False when the lease is lost (nothing written).
    @discardableResult
    public func reportProgress(
        _ id: UUID,
        owner: String,
        phase: String,
        itemsDone: Int64,
        itemsTotal: Int64
    ) async throws -> Bool {
        let rows = try await self.run(
            """
            UPDATE vpp_control.jobs
            SET phase = \(phase), items_done = \(itemsDone), items_total = \(itemsTotal), updated_at = clock_timestamp()
            WHERE id = \(id) AND lease_owner = \(owner) AND state IN \(unescaped: Self.leased)
            RETURNING pg_notify(\(Self.progressChannel), id::text)
            """,
            relaxed: true
        )
        return !rows.isEmpty
    }

    // MARK: Finish

    /// Marks a running job succeeded with its result (JSON text). False when the lease is lost (nothing written).
    @discardableResult
    public func succeed(_ id: UUID, owner: String, result: String) async throws -> Bool {
        try await self.succeed([(id, result)], owner: owner).contains(id)
    }

    /// Marks several running jobs of one owner succeeded in one statement (a worker's batch of finished jobs); returns
    /// the ids written. One invalid result fails the whole batch.
    public func succeed(_ jobs: [(id: UUID, result: String)], owner: String) async throws -> Set<UUID> {
        guard !jobs.isEmpty else { return [] }
        let rows = try await self.run(
            """
            WITH mine AS (
                SELECT j.id, d.result FROM vpp_control.jobs j
                JOIN unnest(\(jobs.map(\.id)), \(jobs.map(\.result))) AS d (id, result) ON d.id = j.id
                WHERE j.lease_owner = \(owner) AND j.state IN \(unescaped: JobEvent.succeed.sqlFrom)
                ORDER BY j.id
                FOR UPDATE OF j
            )
            UPDATE vpp_control.jobs j
            SET state = \(unescaped: JobEvent.succeed.sqlTo), result = mine.result::jsonb, error = '', finished_at = clock_timestamp(),
                lease_owner = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()
            FROM mine
            WHERE j.id = mine.id
            RETURNING j.id, pg_notify(\(Self.progressChannel), j.id::text)
            """,
            jsonField: "result",
            relaxed: true
        )
        return Set(try rows.map { try $0.decode(UUID.self, at: 0) })
    }

    /// Ends a running attempt with an error: the job waits `after` and is claimed again (state `retrying`), or fails
    /// when this was its last allowed attempt. Returns the job as it now is; nil when the lease is lost.
    @discardableResult
    public func retry(_ id: UUID, owner: String, after: Duration, error: String) async throws -> JobRecord? {
        let rows = try await self.run(
            """
            UPDATE vpp_control.jobs j
            SET state = CASE WHEN attempt >= max_attempts THEN \(unescaped: Self.retryFailed) ELSE \(unescaped: Self.retryWaits) END,
                run_after = CASE WHEN attempt >= max_attempts THEN run_after
                            ELSE clock_timestamp() + \(after.queueMilliseconds) * interval '1 millisecond' END,
                finished_at = CASE WHEN attempt >= max_attempts THEN clock_timestamp() END,
                error = \(error), lease_owner = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()
            WHERE id = \(id) AND lease_owner = \(owner) AND state IN \(unescaped: JobEvent.retry.sqlFrom)
            RETURNING \(unescaped: Self.columns("j")), pg_notify(\(Self.progressChannel), j.id::text)
            """
        )
        return try rows.first.map(Self.decode)
    }

    /// Fails a running job for good, with an error and a result (JSON text). False when the lease is lost.
    @discardableResult
    public func fail(_ id: UUID, owner: String, error: String, result: String = "{}") async throws -> Bool {
        let rows = try await self.run(
            """
            UPDATE vpp_control.jobs
            SET state = \(unescaped: JobEvent.fail.sqlTo), error = \(error), result = \(result)::jsonb, finished_at = clock_timestamp(),
                lease_owner = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()
            WHERE id = \(id) AND lease_owner = \(owner) AND state IN \(unescaped: JobEvent.fail.sqlFrom)
            RETURNING pg_notify(\(Self.progressChannel), id::text)
            """,
            jsonField: "result"
        )
        return !rows.isEmpty
    }

    /// Gives a running job back (a worker shutting down): queued again at once, this attempt not counted, and the
    /// workers are woken so another server takes it. False when the lease was already lost.
    @discardableResult
    public func release(_ id: UUID, owner: String) async throws -> Bool {
        let rows = try await self.run(
            """
            UPDATE vpp_control.jobs
            SET state = \(unescaped: JobEvent.release.sqlTo), attempt = greatest(attempt - 1, 0), run_after = clock_timestamp(), started_at = NULL,
                lease_owner = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()
            WHERE id = \(id) AND lease_owner = \(owner) AND state IN \(unescaped: JobEvent.release.sqlFrom)
            RETURNING pg_notify(\(Self.channel), kind), pg_notify(\(Self.progressChannel), id::text)
            """
        )
        return !rows.isEmpty
    }

    /// Cancels the active job of (kind, subject), if any (e.g. its token was deleted); returns how many were
    /// cancelled (0 or 1). A running job's worker finds out at its next heartbeat, and its writes are refused.
    @discardableResult
    public func cancelActive(kind: String, subject: String, reason: String) async throws -> Int {
        let rows = try await self.run(
            """
            UPDATE vpp_control.jobs
            SET state = \(unescaped: JobEvent.cancel.sqlTo), error = \(reason), finished_at = clock_timestamp(),
                lease_owner = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()
            WHERE kind = \(kind) AND subject = \(subject) AND state IN \(unescaped: JobEvent.cancel.sqlFrom)
            RETURNING pg_notify(\(Self.progressChannel), id::text)
            """
        )
        return rows.count
    }

    // MARK: Read

    /// One job. With a `tenantID`, only that tenant's jobs are found: another tenant's job id reads as nil, exactly
    /// like an unknown one. Without one (the operator), any job.
    public func get(_ id: UUID, tenantID: UUID?) async throws -> JobRecord? {
        let rows = try await self.run(
            """
            SELECT \(unescaped: Self.columns("j")) FROM vpp_control.jobs j
            WHERE j.id = \(id) AND (\(tenantID)::uuid IS NULL OR j.tenant_id = \(tenantID))
            """
        )
        return try rows.first.map(Self.decode)
    }

    /// Jobs, newest first (by `queued_at`, then id), filtered by tenant (nil: every tenant, and platform jobs), kind
    /// and subject. `after` is the `next` of the previous page (the caller wraps it in its own page token).
    public func list(
        tenantID: UUID?,
        kind: String? = nil,
        subject: String? = nil,
        pageSize: Int,
        after token: [String]?
    ) async throws -> (jobs: [JobRecord], next: [String]?) {
        var cursor: (micros: Int64, id: UUID)?
        if let token {
            guard token.count == 2, let micros = Int64(token[0]), let id = UUID(canonicalText: token[1])
            else {
                throw JobQueueError.invalidArgument(
                    "page_token is not a token this server issued.",
                    field: "page.page_token"
                )
            }
            cursor = (micros, id)
        }
        let pageSize = max(1, pageSize)
        // As CreationCursor: whole microseconds, so the keyset comparison is exact.
        let rows = try await self.run(
            """
            SELECT \(unescaped: Self.columns("j")), (extract(epoch FROM j.queued_at) * 1000000)::bigint
            FROM vpp_control.jobs j
            WHERE (\(tenantID)::uuid IS NULL OR j.tenant_id = \(tenantID))
              AND (\(kind)::text IS NULL OR j.kind = \(kind))
              AND (\(subject)::text IS NULL OR j.subject = \(subject))
              AND (\(cursor?.id)::uuid IS NULL
                   OR (j.queued_at, j.id) < ('epoch'::timestamptz + \(cursor?.micros)::bigint * interval '1 microsecond',
                                             \(cursor?.id)::uuid))
            ORDER BY j.queued_at DESC, j.id DESC
            LIMIT \(pageSize + 1)
            """
        )
        let jobs = try rows.prefix(pageSize).map(Self.decode)
        guard rows.count > pageSize, let last = jobs.last else { return (jobs, nil) }
        let micros = try rows[pageSize - 1].decode(Int64.self, at: rows.columns.count - 1)
        return (jobs, ["\(micros)", last.id.uuidString])
    }

    /// Active jobs by kind and state.
    public func depth() async throws -> JobQueueDepth {
        let rows = try await self.run(
            """
            SELECT kind, state, count(*) FROM vpp_control.jobs
            WHERE state IN \(unescaped: Self.activeStates)
            GROUP BY kind, state
            """
        )
        var byKind: [String: [JobState: Int]] = [:]
        for row in rows {
            guard let state = JobState(rawValue: try row.decode(String.self, at: 1)) else { continue }
            byKind[try row.decode(String.self, at: 0), default: [:]][state] = try row.decode(Int.self, at: 2)
        }
        return JobQueueDepth(byKind: byKind)
    }

    /// The earliest moment a job of `kinds` that is not ready now becomes claimable: a queued or retrying job's
    /// `run_after`, or a running job's lease expiry. nil when there is none. An idle worker sleeps until then.
    public func nextWakeUp(kinds: [String]) async throws -> Date? {
        guard !kinds.isEmpty else { return nil }
        let rows = try await self.run(
            """
            SELECT least(
                (SELECT min(run_after) FROM vpp_control.jobs
                 WHERE state IN \(unescaped: JobEvent.claim.sqlFrom) AND kind = ANY(\(kinds))),
                (SELECT min(lease_expires_at) FROM vpp_control.jobs WHERE state IN \(unescaped: Self.leased)
                 AND kind = ANY(\(kinds)))
            )
            """
        )
        return try rows.first?.decode(Date?.self, at: 0)
    }

    /// Deletes finished jobs (succeeded, failed, cancelled) that ended before `finishedBefore`, a batch at a time so
    /// no statement holds many locks; returns how many were deleted.
    @discardableResult
    public func prune(finishedBefore: Date) async throws -> Int {
        var deleted = 0
        while true {
            let rows = try await self.run(
                """
                DELETE FROM vpp_control.jobs
                WHERE id IN (
                    SELECT id FROM vpp_control.jobs
                    WHERE finished_at < \(finishedBefore) AND state IN \(unescaped: Self.finishedStates)
                    LIMIT 5000
                )
                """
            )
            let count = rows.affectedRows ?? 0
            deleted += count
            if count < 5000 { return deleted }
        }
    }
}

extension Duration {
    /// Whole milliseconds, never negative (for `interval` arithmetic in SQL).
    var queueMilliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}
