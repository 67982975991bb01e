public import Foundation
public import Logging
public import ServiceLifecycle
public import VPPClock
public import VPPJobs
import VPPLogKeys
public import VPPStorage

/// R7: queues every token's sync on schedule (twice a day by default). Each token's next time is its last plus the
/// interval with ±10% jitter, and the first is spread at random over the interval at upload, so tokens do not all fire
/// at once. Several servers may run it: due rows are taken with `FOR UPDATE SKIP LOCKED`, and a job already queued
/// for a token is joined, not doubled. Suspended tenants and tokens that cannot sync are skipped.
public final class SyncScheduler: Service, Sendable {
    let storage: Storage
    let queue: JobQueue
    let interval: Duration
    let tick: Duration
    let batchSize: Int
    /// What the tick and the hourly prune are timed on. When a token is due is the database's time (`next_sync_at`).
    let clock: InstantClock
    let logger: Logger

    public init(
        storage: Storage,
        queue: JobQueue,
        interval: Duration,
        tick: Duration = .seconds(30),
        batchSize: Int = 500,
        clock: InstantClock = .continuous,
        logger: Logger
    ) {
        self.clock = clock
        self.storage = storage
        self.queue = queue
        self.interval = interval
        self.tick = tick
        self.batchSize = batchSize
        self.logger = logger
    }

    /// Finished jobs are kept this long as history (sync results, GetSyncJob), then pruned.
    public static let jobHistory: TimeInterval = 30 * 24 * 3600

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var lastPrune = self.clock.now - .seconds(3600)
            while !Task.isCancelled {
                do {
                    var queued = try await self.scheduleDue()
                    while queued == self.batchSize { queued = try await self.scheduleDue() }
                    try await self.pushPending()
                    if self.clock.now - lastPrune >= .seconds(3600) {
                        lastPrune = self.clock.now
                        let pruned = try await self.queue.prune(
                            finishedBefore: Date().addingTimeInterval(-Self.jobHistory)
                        )
                        if pruned > 0 {
                            self.logger.info("Pruned finished jobs", metadata: [LogKey.count: "\(pruned)"])
                        }
                    }
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning(
                        "Could not schedule syncs; will try again",
                        metadata: [LogKey.error: "\(error)"]
                    )
                }
                try? await self.clock.sleep(for: self.tick)
            }
        }
    }

    /// Queues a push for every token whose outbox holds changes no push has taken yet (a backstop: ledger changes
    /// queue their push at once).
    public func pushPending() async throws {
        try await SyncJobs(queue: self.queue).pushPending(
            ledger: LicenseLedger(storage: self.storage, logger: self.logger),
            limit: self.batchSize
        )
    }

    /// Queues the syncs that are due; returns how many tokens were due.
    @discardableResult
    public func scheduleDue() async throws -> Int {
        let queue = self.queue
        let count = try await self.storage.takeDueSyncs(limit: self.batchSize, interval: self.interval) {
            tenantID,
            tokenID,
            transaction in
            _ = try await queue.enqueue(
                SyncJobs.newJob(tenantID: tenantID, tokenID: tokenID, trigger: .schedule, full: false),
                in: transaction
            )
        }
        if count > 0 { self.logger.debug("Scheduled syncs queued", metadata: [LogKey.count: "\(count)"]) }
        return count
    }
}
