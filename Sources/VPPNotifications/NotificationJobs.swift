public import Foundation
public import VPPJobs
public import VPPPostgres

/// The jobs that act on Apple's notifications: one per notification received (issue 18), queued in the transaction
/// that records it, so a notification is never recorded without the job that processes it.
public enum NotificationJobs {
    public static let kind = "apple-notification"
    /// A job that fails this often (Apple unreachable while reading an asset's counts) is given up; the next sync
    /// reads the same facts.
    public static let maxAttempts = 5

    public struct Payload: Codable, Sendable, Hashable {
        public var tenantID: UUID
        public var tokenID: UUID
        public var notificationID: String

        enum CodingKeys: String, CodingKey {
            case tenantID = "tenant_id"
            case tokenID = "token_id"
            case notificationID = "notification_id"
        }
    }

    static func newJob(tenantID: UUID, tokenID: UUID, notificationID: String) -> NewJob {
        let payload = Payload(tenantID: tenantID, tokenID: tokenID, notificationID: notificationID)
        let text = (try? JSONEncoder().encode(payload)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return NewJob(
            kind: Self.kind,
            tenantID: tenantID,
            // One job per notification: a repeat of one already recorded queues nothing.
            subject: "notification:\(tokenID.lowercasedText):\(notificationID)",
            trigger: "apple",
            payload: text,
            maxAttempts: Self.maxAttempts
        )
    }

    /// Queues the job of a notification just recorded, in the transaction that records it.
    static func enqueue(
        _ queue: JobQueue,
        tenantID: UUID,
        tokenID: UUID,
        notificationID: String,
        in transaction: PostgresTransaction
    ) async throws {
        try await queue.enqueue(
            Self.newJob(tenantID: tenantID, tokenID: tokenID, notificationID: notificationID),
            in: transaction
        )
    }

    public static func payload(of job: JobRecord) -> Payload? {
        try? JSONDecoder().decode(Payload.self, from: Data(job.payload.utf8))
    }
}
