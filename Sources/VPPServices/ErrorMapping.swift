public import Logging
import VPPPostgres
import VPPProto
import VPPStorage
public import VPPWire

/// Turns every error a service can meet into the RPC status the client sees: the one place where storage and
/// database errors become statuses. Nothing internal (SQL, constraint names, values) reaches the client; the log
/// keeps the details under the call's id.
public enum ServiceErrorMapper {
    public static let map: @Sendable (any Error, Logger) -> RPCError = { error, logger in
        switch error {
        case let error as RPCError:
            return error
        case let error as StorageError:
            return map(error)
        case let error as PostgresError:
            return map(error, logger: logger)
        case is CancellationError:
            return .cancelled("The call was cancelled.")
        default:
            logger.error("Call failed with an unexpected error", metadata: ["error": "\(String(reflecting: error))"])
            return .internalError("An internal error occurred; the server log has the details under this call's id.")
        }
    }

    static func map(_ error: StorageError) -> RPCError {
        switch error {
        case .notFound(let message):
            return .notFound(message)
        case .alreadyExists(let message):
            return .alreadyExists(message)
        case .invalidArgument(let message, let field):
            return .invalidArgument(message, field: field)
        case .failedPrecondition(let message, let reason):
            return .failedPrecondition(message, reason: reason)
        case .resourceExhausted(let message):
            return .resourceExhausted(message)
        case .internalInconsistency(let message):
            return .internalError("Inconsistent stored data: \(message). Please report this.")
        }
    }

    static func map(_ error: PostgresError, logger: Logger) -> RPCError {
        switch error.kind {
        case .connectionFailure, .poolTimeout, .shutdown:
            logger.warning("Database unavailable", metadata: ["error": "\(error)"])
            return .unavailable("The database is unavailable right now; retry in a moment.")
        case .queryCanceled:
            logger.warning("Statement timed out", metadata: ["error": "\(error)"])
            return .deadlineExceeded("The database took too long to answer; retry, or ask for a smaller page.")
        case .serializationFailure, .deadlock:
            return RPCError(.aborted, "The change conflicted with a concurrent one; retry it.")
        default:
            logger.error("Database error", metadata: ["error": "\(error)", "sqlstate": "\(error.sqlState ?? "")"])
            return .internalError("An internal error occurred; the server log has the details under this call's id.")
        }
    }
}
