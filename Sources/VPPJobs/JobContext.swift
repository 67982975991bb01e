import Foundation
public import Logging
import NIOConcurrencyHelpers
import VPPClock
import VPPLogKeys

/// What a handler gets besides its job: a logger with the job's metadata, progress reporting, and whether the worker
/// still holds the job.
public struct JobContext: Sendable {
    /// Carries `job_id`, `job_kind`, `tenant_id` and `attempt`.
    public let logger: Logger
    let running: RunningJob

    /// True once the worker no longer holds the job: another worker took it over, it was cancelled, or the worker is
    /// shutting down and gave it back. Whatever the handler writes to the queue from then on is refused; it should
    /// stop. (The worker also cancels the handler's task.)
    public var isLeaseLost: Bool { self.running.isLeaseLost }

    /// Reports progress. Writes are throttled (at most one per `JobWorkerConfiguration.progressInterval`, a change of
    /// phase at once); the last report is always written before the job's outcome.
    public func progress(phase: String, done: Int64, total: Int64) async {
        await self.running.progress(phase: phase, done: done, total: total)
    }
}

/// The worker's record of one job it runs: lease state, the handler's task, and throttled progress.
final class RunningJob: Sendable {
    /// What every job of one worker shares: where its writes go, as whom, and how often progress is written.
    struct Worker: Sendable {
        var owner: String
        var queue: JobQueue
        var progressInterval: Duration
        var clock: InstantClock
    }

    let job: JobRecord
    let worker: Worker
    let logger: Logger
    var owner: String { self.worker.owner }
    var queue: JobQueue { self.worker.queue }

    struct Progress: Sendable, Hashable {
        var phase: String
        var done: Int64
        var total: Int64
    }

    private struct State {
        var leaseLost = false
        /// Given back at shutdown: the outcome is not written.
        var released = false
        /// Its outcome is being written: a heartbeat that no longer finds it running is not a lost lease.
        var finishing = false
        var handlerTask: Task<JobOutcome, any Error>?
        var lastWrite: ContinuousClock.Instant?
        var lastPhase: String?
        var unwritten: Progress?
    }

    private let state = NIOLockedValueBox(State())

    init(job: JobRecord, worker: Worker, logger: Logger) {
        self.job = job
        self.worker = worker
        self.logger = logger
    }

    var id: UUID { self.job.id }

    var isLeaseLost: Bool { self.state.withLockedValue { $0.leaseLost || $0.released } }
    var isReleased: Bool { self.state.withLockedValue { $0.released } }
    var isFinishing: Bool { self.state.withLockedValue { $0.finishing } }

    func beginFinishing() {
        self.state.withLockedValue { $0.finishing = true }
    }

    /// Starts the handler in a task of its own, so that this one job can be cancelled.
    func start(_ body: @escaping @Sendable () async throws -> JobOutcome) -> Task<JobOutcome, any Error> {
        let task = Task { try await body() }
        let cancelNow = self.state.withLockedValue { state -> Bool in
            state.handlerTask = task
            return state.leaseLost || state.released
        }
        if cancelNow { task.cancel() }
        return task
    }

    /// The lease is gone (heartbeat refused, or a write refused): stop the handler.
    func leaseWasLost() {
        let task = self.state.withLockedValue { state -> Task<JobOutcome, any Error>? in
            state.leaseLost = true
            return state.handlerTask
        }
        task?.cancel()
    }

    /// Marks the job given back (shutdown); false if it had been marked already or its lease was lost.
    func markReleased() -> Bool {
        self.state.withLockedValue { state in
            guard !state.released, !state.leaseLost else { return false }
            state.released = true
            return true
        }
    }

    func cancelHandler() {
        self.state.withLockedValue { $0.handlerTask }?.cancel()
    }

    func progress(phase: String, done: Int64, total: Int64) async {
        let now = self.worker.clock.now
        let write = self.state.withLockedValue { state -> Progress? in
            let progress = Progress(phase: phase, done: done, total: total)
            guard !state.leaseLost, !state.released else { return nil }
            if let last = state.lastWrite, now - last < self.worker.progressInterval, state.lastPhase == phase {
                state.unwritten = progress
                return nil
            }
            state.lastWrite = now
            state.lastPhase = phase
            state.unwritten = nil
            return progress
        }
        if let write { await self.write(write) }
    }

    /// Writes the last progress report if the throttle held it back.
    func flushProgress() async {
        let pending = self.state.withLockedValue { state -> Progress? in
            defer { state.unwritten = nil }
            return state.leaseLost || state.released ? nil : state.unwritten
        }
        if let pending { await self.write(pending) }
    }

    private func write(_ progress: Progress) async {
        do {
            let held = try await self.queue.reportProgress(
                self.job.id,
                owner: self.owner,
                phase: progress.phase,
                itemsDone: progress.done,
                itemsTotal: progress.total
            )
            if !held { self.leaseWasLost() }
        } catch {
            // Progress is informative: a failed write is not worth failing the job for.
            self.logger.debug("Could not record the job's progress", metadata: [LogKey.error: "\(error)"])
        }
    }
}
