/// What the job queue refuses (VPPServices maps each to an RPC status).
public enum JobQueueError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A job (or its tenant) that does not exist, or belongs to another tenant: both read the same.
    case notFound(String)
    /// A value the caller gave is wrong in itself (a kind too long, a page token this server did not issue).
    case invalidArgument(String, field: String)
    /// Something that should never happen: a bug or a hand-edited database.
    case internalInconsistency(String)

    public var description: String {
        switch self {
        case .notFound(let message), .invalidArgument(let message, _), .internalInconsistency(let message): message
        }
    }
}
