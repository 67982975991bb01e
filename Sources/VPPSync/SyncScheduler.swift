public import Foundation
public import Logging
public import ServiceLifecycle
import VPPPostgres
public import VPPStorage
import VPPLogKeys
public import VPPJobs

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
    let logger: Logger

    public init(storage: Storage, queue: JobQueue, interval: Duration, tick: Duration = .seconds(30), batchSize: Int = 500, logger: Logger) {
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
            var lastPrune = ContinuousClock.now - .seconds(3600)
            while !Task.isCancelled {
                do {
                    var queued = try await self.scheduleDue()
                    while queued == self.batchSize { queued = try await self.scheduleDue() }
                    try await self.pushPending()
                    if ContinuousClock.now - lastPrune >= .seconds(3600) {
                        lastPrune = ContinuousClock.now
                        let pruned = try await self.queue.prune(finishedBefore: Date().addingTimeInterval(-Self.jobHistory))
                        if pruned > 0 { self.logger.info("Pruned finished jobs", metadata: [LogKey.count: "\(pruned)"]) }
                    }
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning("Could not schedule syncs; will try again", metadata: [LogKey.error: "\(error)"])
                }
                try? await Task.sleep(for: self.tick)
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
        let seconds = self.interval.components.seconds
        return try await self.storage.pool.transaction { transaction in
            let due = try await transaction.query(
                """
                WITH due AS (
                    SELECT r.token_id FROM vpp_control.token_registry r
                    JOIN vpp_control.tenants t ON t.id = r.tenant_id AND t.state = 'active'
                    WHERE r.sync_enabled AND r.next_sync_at <= clock_timestamp()
                    ORDER BY r.next_sync_at
                    LIMIT \(self.batchSize)
                    FOR UPDATE OF r SKIP LOCKED
                )
                UPDATE vpp_control.token_registry r
                SET next_sync_at = clock_timestamp() + \(seconds)::bigint * (0.9 + random() * 0.2) * interval '1 second'
                FROM due WHERE r.token_id = due.token_id
                RETURNING r.token_id, r.tenant_id
                """
            )
            for row in due {
                let tokenID = try row.decode(UUID.self, at: 0)
                let tenantID = try row.decode(UUID.self, at: 1)
                _ = try await self.queue.enqueue(
                    SyncJobs.newJob(tenantID: tenantID, tokenID: tokenID, trigger: .schedule, full: false),
                    in: transaction
                )
            }
            if !due.isEmpty { self.logger.debug("Scheduled syncs queued", metadata: [LogKey.count: "\(due.count)"]) }
            return due.count
        }
    }
}
