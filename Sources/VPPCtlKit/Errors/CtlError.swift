public import VPPProto
import VPPWire

/// How vppctl ends, by class of failure, so scripts can tell "not there" from "not allowed" from "try again".
/// Documented in `vppctl --help` and the README; keep the three in step.
public enum CtlExitCode: Int32, Sendable, CaseIterable {
    case ok = 0
    /// Anything not classed below (a failed sync, an internal error, a cancelled call).
    case other = 1
    /// The command line is wrong (argument-parser's own errors, remapped from its 64).
    case usage = 2
    case notFound = 3
    /// UNAUTHENTICATED or PERMISSION_DENIED: the key is wrong, revoked, or of the wrong kind.
    case permission = 4
    /// INVALID_ARGUMENT, FAILED_PRECONDITION, ALREADY_EXISTS, OUT_OF_RANGE, RESOURCE_EXHAUSTED, UNIMPLEMENTED: the
    /// request cannot succeed as it is; a bad local file lands here too.
    case rejected = 5
    /// UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED: retrying later may work.
    case retryable = 6

    public static func forStatus(_ code: RpcV1.StatusCode) -> CtlExitCode {
        switch code {
        case .ok: .ok
        case .notFound: .notFound
        case .unauthenticated, .permissionDenied: .permission
        case .invalidArgument, .failedPrecondition, .alreadyExists, .outOfRange, .resourceExhausted, .unimplemented:
            .rejected
        case .unavailable, .deadlineExceeded, .aborted: .retryable
        default: .other
        }
    }

    /// The table printed in `vppctl --help` and copied into the README.
    static let helpTable = """
        Exit codes: 0 ok; 1 other failure (e.g. a failed sync); 2 usage error; 3 NOT_FOUND; \
        4 UNAUTHENTICATED or PERMISSION_DENIED; 5 INVALID_ARGUMENT, FAILED_PRECONDITION, ALREADY_EXISTS, \
        RESOURCE_EXHAUSTED, UNIMPLEMENTED or a bad input file; 6 UNAVAILABLE or DEADLINE_EXCEEDED (retry later).
        """
}

/// A failure vppctl reports: a status class, the message, and what to do about it. Every error a command meets
/// becomes one of these in `CtlError.from(_:context:)`, the one place where RPC statuses meet the user.
public struct CtlError: Error, Sendable, CustomStringConvertible {
    public var code: RpcV1.StatusCode
    public var message: String
    /// What the user can do next; empty when the message already says it.
    public var hint: String
    /// Overrides the exit code the status would give (a failed sync job is a call that succeeded).
    public var exitCode: CtlExitCode

    public init(_ code: RpcV1.StatusCode, _ message: String, hint: String = "", exitCode: CtlExitCode? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
        self.exitCode = exitCode ?? CtlExitCode.forStatus(code)
    }

    /// A local input problem (a file that cannot be read or parsed): INVALID_ARGUMENT, exit 5.
    public static func badInput(_ message: String, hint: String) -> CtlError {
        CtlError(.invalidArgument, message, hint: hint)
    }

    /// The one line printed on stderr: `vppctl: NOT_FOUND: no token 42. Run "vppctl tokens list" to see the tokens.`
    public var description: String {
        var line = "\(self.code.name): \(self.message)"
        if !self.hint.isEmpty {
            if let last = line.last, !".!?".contains(last) { line += "." }
            line += " " + self.hint
        }
        return line
    }

    /// Maps any error a command met to what the user sees. `context` supplies what only the command knows: which
    /// list to look in when something was not found, and where the connection settings came from.
    public static func from(_ error: any Error, context: ErrorContext) -> CtlError {
        if let error = error as? CtlError { return error }
        guard let rpc = error as? RPCError else {
            if error is CancellationError { return CtlError(.cancelled, "Cancelled.") }
            return CtlError(.unknown, "\(error)")
        }
        let message = rpc.message.isEmpty ? "(no message from the server)" : rpc.message
        if let hint = context.hints[rpc.code] { return CtlError(rpc.code, message, hint: hint) }
        switch rpc.code {
        case .notFound:
            return CtlError(
                rpc.code,
                message,
                hint: context.notFoundHint ?? "Check the id; the list commands show them."
            )
        case .unauthenticated:
            return CtlError(
                rpc.code,
                message,
                hint: "The key came from \(context.keySource ?? "the settings"); give another with --api-key-file, "
                    + "VPP_API_KEY or api_key_file in \(ConfigFile.defaultPathDescription) (vppctl config shows where "
                    + "each setting comes from)."
            )
        case .permissionDenied:
            return CtlError(
                rpc.code,
                message,
                hint: "This key may not do that: tenant keys manage one tenant; operator keys manage tenants and keys."
            )
        case .unavailable where rpc.message.contains("TLS"):
            // The client's own message says what to check (--ca-file, --tls-server-name, --plaintext).
            return CtlError(rpc.code, message)
        case .unavailable:
            return CtlError(
                rpc.code,
                message,
                hint: "The address \(context.server ?? "") comes from --server, VPP_SERVER or server in "
                    + "\(ConfigFile.defaultPathDescription); check it, or retry later."
            )
        case .deadlineExceeded:
            return CtlError(rpc.code, message, hint: "Retry, or give the call more time with --timeout.")
        case .unimplemented:
            return CtlError(rpc.code, message, hint: "This server does not offer that call yet; upgrade the server.")
        case .invalidArgument where rpc.message.contains("must be an id") && context.notFoundHint != nil:
            // An id that is not even well-formed: the same advice as for an unknown one.
            return CtlError(rpc.code, message, hint: context.notFoundHint!)
        case .failedPrecondition, .invalidArgument, .alreadyExists, .resourceExhausted, .outOfRange:
            // The server's messages for these say what to do (style.md); vppctl adds nothing generic.
            return CtlError(rpc.code, message)
        default:
            return CtlError(rpc.code, message)
        }
    }
}

/// What a command knows that turns a bare status into advice.
public struct ErrorContext: Sendable {
    /// e.g. `Run "vppctl tokens list" to see the tokens.`
    public var notFoundHint: String?
    /// Where the key came from, e.g. `VPP_API_KEY_FILE=/path` (never the key).
    public var keySource: String?
    /// The server address in use.
    public var server: String?
    /// Advice for other statuses, where the command knows better than the generic line (e.g. a bad token file).
    public var hints: [RpcV1.StatusCode: String]

    public init(
        notFoundHint: String? = nil,
        keySource: String? = nil,
        server: String? = nil,
        hints: [RpcV1.StatusCode: String] = [:]
    ) {
        self.notFoundHint = notFoundHint
        self.hints = hints
        self.keySource = keySource
        self.server = server
    }
}
