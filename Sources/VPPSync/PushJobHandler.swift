import Foundation
public import Logging
public import VPPJobs
public import VPPStorage

/// Runs push jobs: a token's outbox sent to Apple (C6).
public struct PushJobHandler: JobHandler {
    let runner: PushRunner
    let logger: Logger

    public init(runner: PushRunner, logger: Logger) {
        self.runner = runner
        self.logger = logger
    }

    public func run(_ job: JobRecord, context: JobContext) async throws -> JobOutcome {
        guard let payload = SyncJobs.payload(of: job) else {
            return .failed(error: "The job's payload is not a push request; it was not run.", result: "{}")
        }
        do {
            let applied = try await self.runner.run(tenantID: payload.tenantID, tokenID: payload.tokenID)
            return .succeeded(result: "{\"applied\":\(applied)}")
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
