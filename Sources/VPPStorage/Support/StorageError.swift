/// What the storage layer reports in domain terms. `VPPServices` maps these (and `PostgresError`) to RPC statuses in
/// one place.
public enum StorageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The thing does not exist, or belongs to another tenant: both read the same.
    case notFound(String)
    case alreadyExists(String)
    /// The request is wrong in itself (a bad value, a bad page token).
    case invalidArgument(String, field: String?)
    /// The request is fine but the state forbids it (e.g. a suspended tenant).
    case failedPrecondition(String, reason: String?)
    /// A limit is reached (e.g. the tenant's token limit).
    case resourceExhausted(String)
    /// Something that should never happen; a bug or a hand-edited database.
    case internalInconsistency(String)

    public var description: String {
        switch self {
        case .notFound(let message), .alreadyExists(let message), .resourceExhausted(let message),
            .internalInconsistency(let message):
            message
        case .invalidArgument(let message, _), .failedPrecondition(let message, _):
            message
        }
    }
}
