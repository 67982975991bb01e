import AppleVPP
public import Logging
import VPPJobs
import VPPLogKeys
import VPPPostgres
import VPPProto
import VPPStorage
import VPPSync
import VPPTokens
public import VPPWire

/// Turns every error a service can meet into the RPC status the client sees: the one place where storage and
/// database errors become statuses. Nothing internal (SQL, constraint names, values) reaches the client; the log
/// keeps the details under the call's id.
public enum ServiceErrorMapper {
    public static let map: @Sendable (any Error, Logger) -> RPCError = { error, logger in
        if let mapped = deliberate(error, logger: logger) { return mapped }
        logger.error("Call failed with an unexpected error", metadata: [LogKey.error: "\(String(reflecting: error))"])
        return .internalError("An internal error occurred; the server log has the details under this call's id.")
    }

    static let internalMessage = "An internal error occurred; the server log has the details under this call's id."

    /// The status chosen for each error type services can throw; nil for a type nobody chose one for (a test lists
    /// every error type of the modules services use and requires an answer here for each).
    static func deliberate(_ error: any Error, logger: Logger) -> RPCError? {
        switch error {
        case let error as RPCError:
            return error
        case let error as StorageError:
            return map(error)
        case let error as ChangeCursorExpired:
            // Issue 19: never a silent gap; the detail names the oldest cursor still held.
            return RPCError(
                .failedPrecondition,
                error.description,
                details: [ChangeService.detail("CHANGE_CURSOR_EXPIRED", ["oldest_cursor": "\(error.oldest)"])]
            )
        case let error as JobQueueError:
            // The queue's refusals mean what storage's do, and are answered alike.
            switch error {
            case .notFound(let message): return map(StorageError.notFound(message))
            case .invalidArgument(let message, let field):
                return map(StorageError.invalidArgument(message, field: field))
            case .internalInconsistency(let message): return map(StorageError.internalInconsistency(message))
            }
        case let error as PostgresError:
            return map(error, logger: logger)
        case is CancellationError:
            return .cancelled("The call was cancelled.")
        case let error as AppleUnavailableError:
            // Apple could not be reached, or answered with an error that may heal: retry later.
            return .unavailable(error.message, reason: "APPLE_UNAVAILABLE")
        case let error as AppleVPPError:
            if error.isRetryable {
                return .unavailable(
                    "Apple's VPP service is unavailable or throttling (\(error)); retry later.",
                    reason: "APPLE_UNAVAILABLE"
                )
            }
            return .failedPrecondition("Apple refused the request: \(error)", reason: "APPLE_REFUSED")
        case let error as AppleVPPBatchError:
            return deliberate(error.error, logger: logger)
        case let error as SyncFailure:
            switch error.disposition {
            case .retry: return .unavailable(error.message, reason: "APPLE_UNAVAILABLE")
            case .stop: return .failedPrecondition(error.message)
            }
        case let error as ServiceTokenError:
            // The token file a client sent; the message says what is wrong and never repeats the token.
            return .invalidArgument(
                "The token file was refused: \(error)",
                field: "token_file",
                reason: "TOKEN_FILE_INVALID"
            )
        case let error as ProtoDecodingError:
            return .invalidArgument("The request could not be decoded: \(error)")
        case let error as TokenCipherError:
            // The server's own key material: an operator's problem, never the client's; no detail leaves the log.
            logger.error("Token cipher failed", metadata: [LogKey.error: "\(error)"])
            return .internalError(Self.internalMessage)
        case let error as PostgresDecodingError:
            logger.error("Stored data did not decode", metadata: [LogKey.error: "\(error)"])
            return .internalError(Self.internalMessage)
        default:
            return nil
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
            logger.warning("Database unavailable", metadata: [LogKey.error: "\(error)"])
            return .unavailable(
                "The database is unavailable right now; retry in a moment.",
                reason: "DATABASE_UNAVAILABLE"
            )
        case .queryCanceled:
            logger.warning("Statement timed out", metadata: [LogKey.error: "\(error)"])
            return .deadlineExceeded("The database took too long to answer; retry, or ask for a smaller page.")
        case .serializationFailure, .deadlock:
            return RPCError(.aborted, "The change conflicted with a concurrent one; retry it.")
        default:
            logger.error(
                "Database error",
                metadata: [LogKey.error: "\(error)", LogKey.sqlstate: "\(error.sqlState ?? "")"]
            )
            return .internalError("An internal error occurred; the server log has the details under this call's id.")
        }
    }
}
