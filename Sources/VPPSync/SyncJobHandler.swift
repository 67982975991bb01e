import Foundation
public import Logging
public import VPPJobs
import VPPLogKeys
public import VPPStorage

/// Runs sync jobs from the queue (C6): one token each, with progress for WatchSyncJob.
public struct SyncJobHandler: JobHandler {
    /// R15: fresh counts (more bought, fewer held elsewhere) may serve waiters. A failure here does not fail the sync:
    /// the next sync, or the scheduler's outbox sweep, tries again.
    func serveWaiters(_ payload: SyncJobs.Payload) async {
        do {
            if try await self.ledger.allocateToken(tenantID: payload.tenantID, tokenID: payload.tokenID) {
                try await self.syncs.requestPush(tenantID: payload.tenantID, tokenID: payload.tokenID)
            }
        } catch {
            self.logger.warning("Could not serve waiting licenses after a sync", metadata: [LogKey.error: "\(error)"])
        }
    }

    let runner: SyncRunner
    let store: SyncStore
    let ledger: LicenseLedger
    let syncs: SyncJobs
    let logger: Logger

    public init(runner: SyncRunner, store: SyncStore, ledger: LicenseLedger, syncs: SyncJobs, logger: Logger) {
        self.runner = runner
        self.store = store
        self.ledger = ledger
        self.syncs = syncs
        self.logger = logger
    }

    public func run(_ job: JobRecord, context: JobContext) async throws -> JobOutcome {
        guard let payload = SyncJobs.payload(of: job) else {
            return .failed(error: "The job's payload is not a sync request; it was not run.", result: "{}")
        }
        do {
            let summary = try await self.runner.run(
                tenantID: payload.tenantID,
                tokenID: payload.tokenID,
                jobID: job.id,
                full: payload.full
            ) { phase, done, total in
                await context.progress(phase: phase.rawValue, done: done, total: total)
            }
            await self.serveWaiters(payload)
            let result = (try? JSONEncoder().encode(summary)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            return .succeeded(result: result)
        } catch {
            switch error.disposition {
            case .retry(let after) where job.attempt < job.maxAttempts:
                return .retry(after: after, error: error.message)
            case .retry, .stop:
                // The sync is over: the token shows why (R6).
                do {
                    try await self.store.recordFinish(
                        tenantID: payload.tenantID,
                        tokenID: payload.tokenID,
                        jobID: job.id,
                        result: "failed",
                        error: error.message,
                        summary: nil,
                        versions: nil,
                        at: Date()
                    )
                } catch {
                    self.logger.debug(
                        "Could not record the failed sync on its token",
                        metadata: [LogKey.error: "\(error)"]
                    )
                }
                return .failed(error: error.message, result: "{}")
            }
        }
    }
}
