import Foundation
public import Logging
public import VPPJobs
import VPPLogKeys
public import VPPStorage
public import VPPSync

/// Runs push jobs: a token's outbox sent to Apple (C6).
public struct PushJobHandler: JobHandler {
    let runner: PushRunner
    let syncs: SyncJobs
    let logger: Logger

    public init(runner: PushRunner, syncs: SyncJobs, logger: Logger) {
        self.runner = runner
        self.syncs = syncs
        self.logger = logger
    }

    public func run(_ job: JobRecord, context: JobContext) async throws -> JobOutcome {
        guard let payload = SyncJobs.payload(of: job) else {
            return .failed(error: "The job's payload is not a push request; it was not run.", result: "{}")
        }
        do {
            let outcome = try await self.runner.run(tenantID: payload.tenantID, tokenID: payload.tokenID)
            if outcome.countsStale || outcome.usersRegistered {
                // R15: Apple had fewer licenses than the last sync said (9709): re-read its counts (a full sync), so
                // the line moves as soon as the seats are known, not at the next scheduled sync. R20: users just
                // registered are invited: an incremental sync reads their invitations.
                do {
                    _ = try await self.syncs.request(
                        tenantID: payload.tenantID,
                        tokenID: payload.tokenID,
                        trigger: .ledger,
                        full: outcome.countsStale
                    )
                } catch {
                    self.logger.warning(
                        "Could not queue the sync that follows a push",
                        metadata: [LogKey.error: "\(error)"]
                    )
                }
            }
            return .succeeded(result: "{\"applied\":\(outcome.applied)}")
        } catch {
            switch error.disposition {
            case .retry(let after) where job.attempt < job.maxAttempts:
                return .retry(after: after, error: error.message)
            case .retry, .stop:
                return .failed(error: error.message, result: "{}")
            }
        }
    }
}
