import Foundation
public import Logging
import NIOConcurrencyHelpers
public import ServiceLifecycle
public import VPPClock
import VPPLogKeys
import VPPPostgres

/// Runs the jobs of the queue (C6) with the handlers it was given, as a `Service` of vppd's `ServiceGroup`.
///
/// - **Finding work.** It listens on `JobQueue.channel` (enqueues and releases NOTIFY it). When a claim fills every
///   free slot it claims again as soon as a slot frees; when a claim finds nothing it sleeps until a notification, the
///   earliest moment a retry comes due or a lease runs out (one cheap query), or `pollInterval`, whichever is first.
///   It never spins. Under load it lets a few slots free up (at most `claimBatchWindow`) so that one claim takes
///   several jobs.
/// - **Running.** Up to `concurrency` jobs at once, each handler in a task of its own. One heartbeat statement every
///   `lease / 3` renews every lease this worker holds; a job whose lease is gone (taken over after a stall, cancelled)
///   has its handler cancelled, and nothing it returns is written.
/// - **Outcomes.** Success is written in batches (`SuccessBatcher`); a thrown error or `.retry` waits a backoff with
///   full jitter (never less than the handler's retry-after) and fails once the job's attempts are used up.
/// - **Shutdown.** On graceful shutdown it stops claiming, lets running jobs finish within `shutdownGracePeriod`, then
///   gives the rest back to the queue (`JobQueue.release`: queued again, attempt not counted, other workers woken) and
///   cancels their handlers. On cancellation it gives them back at once.
///
/// Several workers (in one process or many) share the queue safely: claims use `SKIP LOCKED` and every write checks
/// the lease owner, so each job runs once at a time and a dead worker's jobs are taken up when their lease expires.
public final class JobWorker: Service, Sendable {
    public let queue: JobQueue
    public let configuration: JobWorkerConfiguration
    let handlers: [String: any JobHandler]
    let kinds: [String]
    let logger: Logger
    let metrics = JobMetrics()
    let batcher: SuccessBatcher

    /// What every timer of the worker reads and sleeps on: heartbeats, polls, the claim window, the grace period,
    /// progress throttling and run times.
    let clock: InstantClock
    /// What the jobs it runs share.
    var runningJobs: RunningJob.Worker {
        RunningJob.Worker(
            owner: self.configuration.owner,
            queue: self.queue,
            progressInterval: self.configuration.progressInterval,
            clock: self.clock
        )
    }
    /// Rung by notifications and at shutdown: there may be work.
    private let workBell: Doorbell
    /// Rung when a job ends and at shutdown: there may be a free slot.
    private let slotBell: Doorbell

    private struct State {
        var running: [UUID: RunningJob] = [:]
        var stopping = false
        var graceful = true
    }

    private let state = NIOLockedValueBox(State())

    public init(
        queue: JobQueue,
        handlers: [String: any JobHandler],
        configuration: JobWorkerConfiguration = JobWorkerConfiguration(),
        clock: InstantClock = .continuous,
        logger: Logger
    ) {
        self.clock = clock
        self.workBell = Doorbell(clock: clock)
        self.slotBell = Doorbell(clock: clock)
        self.queue = queue
        self.handlers = handlers
        self.kinds = handlers.keys.sorted()
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: LogKey.worker] = "\(configuration.owner)"
        self.logger = logger
        self.batcher = SuccessBatcher(queue: queue, owner: configuration.owner, logger: logger)
    }

    /// Jobs running now.
    public var runningCount: Int { self.state.withLockedValue { $0.running.count } }

    // MARK: Service

    public func run() async throws {
        let listener = try PostgresListener(
            configuration: self.queue.pool.configuration,
            channels: [JobQueue.channel],
            logger: self.logger
        )
        defer { listener.stop() }
        self.logger.info(
            "Job worker started",
            metadata: [LogKey.kinds: "\(self.kinds)", LogKey.concurrency: "\(self.configuration.concurrency)"]
        )
        await withDiscardingTaskGroup { background in
            background.addTask {
                // Every event is a reason to look: a notification, the first LISTEN (jobs queued before it), or a
                // reconnection (notifications sent while it was down are lost).
                for await _ in listener.events { self.workBell.ring() }
            }
            background.addTask { await self.heartbeatLoop() }
            background.addTask { await self.depthLoop() }
            await withTaskCancellationHandler {
                await withGracefulShutdownHandler {
                    await withDiscardingTaskGroup { jobs in
                        await self.claimLoop(&jobs)
                        await self.drain()
                    }
                } onGracefulShutdown: {
                    self.stop(graceful: true)
                }
            } onCancel: {
                self.stop(graceful: false)
            }
            listener.stop()
            background.cancelAll()
        }
        self.logger.info("Job worker stopped")
    }

    private func stop(graceful: Bool) {
        self.state.withLockedValue { state in
            state.stopping = true
            state.graceful = state.graceful && graceful
        }
        self.workBell.ring()
        self.slotBell.ring()
    }

    private var isStopping: Bool { self.state.withLockedValue { $0.stopping } }

    // MARK: Claiming

    private func claimLoop(_ jobs: inout DiscardingTaskGroup) async {
        var failures = 0
        var lastClaimWasFull = false
        let half = max(1, self.configuration.concurrency / 2)
        while !self.isStopping {
            var free = self.configuration.concurrency - self.runningCount
            if free <= 0 {
                await self.slotBell.wait(timeout: self.configuration.pollInterval)
                continue
            }
            if lastClaimWasFull, free < half, self.configuration.claimBatchWindow > .zero {
                // There is more work: give a few more slots the chance to free up, so one claim takes several jobs.
                let deadline = self.clock.now + self.configuration.claimBatchWindow
                while !self.isStopping, self.clock.now < deadline,
                    self.configuration.concurrency - self.runningCount < half
                {
                    await self.slotBell.wait(timeout: deadline - self.clock.now)
                }
                free = self.configuration.concurrency - self.runningCount
            }
            let claimed: [JobRecord]
            do {
                claimed = try await self.queue.claim(
                    owner: self.configuration.owner,
                    kinds: self.kinds,
                    limit: free,
                    lease: self.configuration.lease
                )
                failures = 0
            } catch {
                // The database is away: try again after a growing pause (up to the poll interval).
                failures += 1
                self.logger.warning("Could not claim jobs", metadata: [LogKey.error: "\(error)"])
                let pause = min(Duration.milliseconds(100) * (1 << min(failures, 8)), self.configuration.pollInterval)
                await self.workBell.wait(timeout: pause)
                continue
            }
            for job in claimed {
                let running = RunningJob(job: job, worker: self.runningJobs, logger: self.jobLogger(job))
                // Registered before the next claim counts free slots.
                self.state.withLockedValue { $0.running[job.id] = running }
                jobs.addTask { await self.execute(running) }
            }
            lastClaimWasFull = claimed.count == free
            if self.isStopping { break }
            // A partial batch may have been cut short by rows other workers held: look once more before sleeping.
            if !claimed.isEmpty { continue }
            await self.workBell.wait(timeout: await self.idleTimeout())
        }
    }

    /// How long to sleep with nothing to claim: until the earliest retry or lease expiry, at most the poll interval,
    /// at least 50 ms (a row another worker is claiming right now reads as due).
    private func idleTimeout() async -> Duration {
        var timeout = self.configuration.pollInterval
        do {
            if let next = try await self.queue.nextWakeUp(kinds: self.kinds) {
                let seconds = next.timeIntervalSinceNow
                let until = Duration.milliseconds(Int64((max(0, seconds) * 1000).rounded(.up)) + 5)
                timeout = min(timeout, until)
            }
        } catch {
            self.logger.debug("Could not read when the next job comes due", metadata: [LogKey.error: "\(error)"])
        }
        return max(timeout, .milliseconds(50))
    }

    private func jobLogger(_ job: JobRecord) -> Logger {
        var logger = self.logger
        logger[metadataKey: LogKey.jobID] = "\(job.id)"
        logger[metadataKey: LogKey.jobKind] = "\(job.kind)"
        logger[metadataKey: LogKey.attempt] = "\(job.attempt)"
        if let tenantID = job.tenantID { logger[metadataKey: LogKey.tenantID] = "\(tenantID)" }
        return logger
    }

    // MARK: Running

    private func execute(_ running: RunningJob) async {
        let job = running.job
        defer {
            self.state.withLockedValue { _ = $0.running.removeValue(forKey: job.id) }
            self.slotBell.ring()
        }
        if let startedAt = job.startedAt {
            let waited = startedAt.timeIntervalSince(job.runAfter)
            self.metrics.waited(kind: job.kind, nanoseconds: Int64(waited * 1e9))
        }
        guard let handler = self.handlers[job.kind] else { return }  // claims ask only for these kinds
        let context = JobContext(logger: running.logger, running: running)
        running.logger.debug("Job started")
        let started = self.clock.now
        let task = running.start { try await handler.run(job, context: context) }
        let result = await withTaskCancellationHandler {
            await task.result
        } onCancel: {
            task.cancel()
        }
        self.metrics.ran(kind: job.kind, duration: self.clock.now - started)
        await self.record(result, of: running)
    }

    /// Writes the outcome of an attempt, unless the worker no longer holds the job.
    private func record(_ result: Result<JobOutcome, any Error>, of running: RunningJob) async {
        let job = running.job
        let logger = running.logger
        if running.isLeaseLost {
            let outcome = running.isReleased ? "released" : "lease_lost"
            self.metrics.outcome(kind: job.kind, outcome)
            logger.info(
                "Job no longer held by this worker; its outcome is not written",
                metadata: [LogKey.reason: "\(outcome)"]
            )
            return
        }
        await running.flushProgress()
        running.beginFinishing()
        let outcome: JobOutcome
        switch result {
        case .success(let returned):
            outcome = returned
        case .failure(let error):
            outcome = .retry(after: (error as? any RetryAfterProviding)?.retryAfter, error: "\(error)")
        }
        let owner = self.configuration.owner
        do {
            switch outcome {
            case .succeeded(let result):
                if try await self.batcher.succeed(job.id, result: Self.validJSON(result, logger: logger)) {
                    self.metrics.outcome(kind: job.kind, "succeeded")
                    logger.debug("Job succeeded")
                } else {
                    self.lost(running)
                }
            case .retry(let requested, let error):
                // C6: backoff with jitter, never shorter than the handler's retry-after; the queue fails the job once
                // its attempts are used up.
                let delay = self.configuration.backoff.delay(afterAttempt: job.attempt, requested: requested)
                guard let updated = try await self.queue.retry(job.id, owner: owner, after: delay, error: error) else {
                    self.lost(running)
                    return
                }
                if updated.state == .failed {
                    self.metrics.outcome(kind: job.kind, "failed")
                    logger.warning("Job failed: no attempts left", metadata: [LogKey.error: "\(error)"])
                } else {
                    self.metrics.outcome(kind: job.kind, "retried")
                    self.metrics.retried(kind: job.kind)
                    logger.info("Job will be retried", metadata: [LogKey.error: "\(error)", LogKey.after: "\(delay)"])
                    // The claim loop may be asleep until a later wake-up: let it see this retry's time.
                    self.workBell.ring()
                }
            case .failed(let error, let result):
                if try await self.queue.fail(
                    job.id,
                    owner: owner,
                    error: error,
                    result: Self.validJSON(result, logger: logger)
                ) {
                    self.metrics.outcome(kind: job.kind, "failed")
                    logger.warning("Job failed", metadata: [LogKey.error: "\(error)"])
                } else {
                    self.lost(running)
                }
            }
        } catch {
            // The lease runs out and another worker (or this one) takes the job up again as its next attempt.
            self.metrics.outcome(kind: job.kind, "unrecorded")
            logger.error("Could not record the job's outcome", metadata: [LogKey.error: "\(error)"])
        }
    }

    private func lost(_ running: RunningJob) {
        running.leaseWasLost()
        self.metrics.outcome(kind: running.job.kind, "lease_lost")
        running.logger.info("Job no longer held by this worker; its outcome was refused")
    }

    /// A handler's result that is not JSON becomes a JSON string, rather than failing the write.
    static func validJSON(_ text: String, logger: Logger) -> String {
        if let data = text.data(using: .utf8),
            (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil,
            !text.contains("\\u0000")
        {
            return text
        }
        logger.warning("A job handler's result is not JSON; it is stored as a JSON string")
        let encoded = (try? JSONEncoder().encode(text.replacingOccurrences(of: "\u{0}", with: ""))) ?? Data("\"\"".utf8)
        return String(decoding: encoded, as: UTF8.self)
    }

    // MARK: Leases

    /// One statement renews every lease this worker holds; the jobs it no longer holds are stopped.
    private func heartbeatLoop() async {
        let interval = self.configuration.lease / 3
        while !Task.isCancelled {
            do {
                try await self.clock.sleep(for: interval)
            } catch {
                return
            }
            let running = self.state.withLockedValue { Array($0.running.values) }
                .filter { !$0.isLeaseLost && !$0.isFinishing }
            guard !running.isEmpty else { continue }
            do {
                let held = try await self.queue.heartbeat(
                    running.map(\.id),
                    owner: self.configuration.owner,
                    lease: self.configuration.lease
                )
                // C6: a job this worker no longer holds (taken over after a stall, cancelled) must stop at once.
                for job in running where !held.contains(job.id) && !job.isLeaseLost && !job.isFinishing {
                    job.logger.warning("Lost the job's lease (taken over or cancelled); stopping it")
                    job.leaseWasLost()
                }
            } catch {
                self.logger.warning("Could not renew job leases", metadata: [LogKey.error: "\(error)"])
            }
        }
    }

    private func depthLoop() async {
        while !Task.isCancelled {
            do {
                self.metrics.record(try await self.queue.depth())
            } catch {
                if Task.isCancelled { return }
                self.logger.debug("Could not read the queue depth", metadata: [LogKey.error: "\(error)"])
            }
            do {
                try await self.clock.sleep(for: self.configuration.depthInterval)
            } catch {
                return
            }
        }
    }

    // MARK: Shutdown

    /// After claiming stopped: waits for running jobs within the grace period (none when cancelled), then gives the
    /// rest back to the queue and cancels their handlers.
    private func drain() async {
        let graceful = self.state.withLockedValue { $0.graceful }
        if graceful && !Task.isCancelled {
            let deadline = self.clock.now + self.configuration.shutdownGracePeriod
            while self.runningCount > 0, self.clock.now < deadline, !Task.isCancelled {
                await self.slotBell.wait(timeout: deadline - self.clock.now)
            }
        }
        // C6: jobs that did not finish go back to the queue now, rather than waiting out their lease on a stopped server.
        let remaining = self.state.withLockedValue { Array($0.running.values) }.filter { $0.markReleased() }
        guard !remaining.isEmpty else { return }
        self.logger.info("Giving running jobs back to the queue", metadata: [LogKey.jobs: "\(remaining.count)"])
        // Release before cancelling, so that whatever a cancelled handler returns is refused by the owner check. A task
        // of its own: this one may be cancelled, and the releases must still be written.
        let queue = self.queue
        let owner = self.configuration.owner
        let logger = self.logger
        await Task {
            for running in remaining {
                do {
                    try await queue.release(running.id, owner: owner)
                } catch {
                    logger.warning(
                        "Could not give a job back; it is taken up when its lease expires",
                        metadata: [LogKey.jobID: "\(running.id)", LogKey.error: "\(error)"]
                    )
                }
            }
        }.value
        for running in remaining { running.cancelHandler() }
    }
}
