public import Foundation
public import VPPJobs
public import VPPPostgres
public import VPPStorage

/// Sync jobs (C6) on the PostgreSQL job queue: one kind, one subject per token, so a sync requested while one is
/// queued or running joins it.
public struct SyncJobs: Sendable {
    public static let kind = "sync"
    /// Jobs that send a token's outbox (license changes) to Apple.
    public static let pushKind = "push"
    /// Attempts before a sync that keeps failing with errors that may heal is given up (the next scheduled one runs).
    public static let maxAttempts = 8

    public let queue: JobQueue

    public init(queue: JobQueue) {
        self.queue = queue
    }

    /// What a sync job carries.
    public struct Payload: Codable, Sendable, Hashable {
        public var tenantID: UUID
        public var tokenID: UUID
        public var full: Bool

        enum CodingKeys: String, CodingKey {
            case tenantID = "tenant_id"
            case tokenID = "token_id"
            case full
        }
    }

    public enum Trigger: String, Sendable {
        case schedule
        case manual
        case upload
        /// The ledger found Apple's counts stale (Apple had no license left where the sync said there were some).
        case ledger
        /// Apple's notification named something the token does not have yet (a new purchase: issue 18).
        case notification
    }

    /// Queues a sync of the token, or joins the one already queued or running (R7).
    /// In `transaction` when one is given: the job then exists only if the transaction commits.
    public func request(
        tenantID: UUID,
        tokenID: UUID,
        trigger: Trigger,
        full: Bool,
        in transaction: PostgresTransaction? = nil
    ) async throws -> (job: JobRecord, joined: Bool) {
        let job = Self.newJob(tenantID: tenantID, tokenID: tokenID, trigger: trigger, full: full)
        if let transaction { return try await self.queue.enqueue(job, in: transaction) }
        return try await self.queue.enqueue(job)
    }

    static func newJob(tenantID: UUID, tokenID: UUID, trigger: Trigger, full: Bool) -> NewJob {
        let payload = Payload(tenantID: tenantID, tokenID: tokenID, full: full)
        let text = (try? JSONEncoder().encode(payload)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return NewJob(
            kind: Self.kind,
            tenantID: tenantID,
            subject: tokenID.lowercasedText,
            trigger: trigger.rawValue,
            payload: text,
            maxAttempts: Self.maxAttempts
        )
    }

    /// Queues sending the token's outbox to Apple, or joins the push already queued or running (a push that is
    /// running when new changes commit is followed by another: see `LicenseLedger.clearOutboxFlag`).
    @discardableResult
    public func requestPush(tenantID: UUID, tokenID: UUID) async throws -> JobRecord {
        let payload = Payload(tenantID: tenantID, tokenID: tokenID, full: false)
        let text = (try? JSONEncoder().encode(payload)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return try await self.queue.enqueue(
            NewJob(
                kind: Self.pushKind,
                tenantID: tenantID,
                subject: "push:" + tokenID.lowercasedText,
                trigger: "ledger",
                payload: text,
                maxAttempts: Self.maxAttempts
            )
        ).job
    }

    /// Queues a push for each token whose outbox holds changes no push has taken yet (one tenant's, or every
    /// tenant's when `tenantID` is nil).
    public func pushPending(ledger: LicenseLedger, tenantID: UUID? = nil, limit: Int = 10_000) async throws {
        for (tenant, token) in try await ledger.tokensWithOutbox(tenantID: tenantID, limit: limit) {
            try await self.requestPush(tenantID: tenant, tokenID: token)
        }
    }

    /// The tenant's sync job; another tenant's id reads as unknown (C3).
    public func get(tenantID: UUID, jobID: UUID) async throws -> JobRecord {
        guard let job = try await self.queue.get(jobID, tenantID: tenantID), job.kind == Self.kind else {
            throw StorageError.notFound("No sync job with id \(jobID.lowercasedText).")
        }
        return job
    }

    public func list(tenantID: UUID, tokenID: UUID?, pageSize: Int, after: PageToken?) async throws -> (
        jobs: [JobRecord], next: PageToken?
    ) {
        let page = try await self.queue.list(
            tenantID: tenantID,
            kind: Self.kind,
            subject: tokenID?.lowercasedText,
            pageSize: pageSize,
            after: after?.values
        )
        return (page.jobs, page.next.map(PageToken.init))
    }

    /// Stops the token's queued or running sync (the token is being deleted).
    @discardableResult
    public func cancel(tokenID: UUID, reason: String) async throws -> Int {
        try await self.queue.cancelActive(kind: Self.kind, subject: tokenID.lowercasedText, reason: reason)
    }

    public static func payload(of job: JobRecord) -> Payload? {
        try? JSONDecoder().decode(Payload.self, from: Data(job.payload.utf8))
    }

    public static func summary(of job: JobRecord) -> SyncSummary? {
        guard job.state == .succeeded else { return nil }
        return try? JSONDecoder().decode(SyncSummary.self, from: Data(job.result.utf8))
    }
}
