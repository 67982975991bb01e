public import VPPProto

/// A failed call's status: a gRPC status code, a message that says what was wrong and what to do, and optional
/// machine-readable details. Handlers throw it; the server turns it into the call's final `Status`, and the client
/// library throws it back to the caller.
public struct RPCError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: RpcV1.StatusCode
    public var message: String
    public var details: [RpcV1.ErrorDetail]

    public init(_ code: RpcV1.StatusCode, _ message: String, details: [RpcV1.ErrorDetail] = []) {
        self.code = code
        self.message = message
        self.details = details
    }

    public init(status: RpcV1.Status) {
        self.init(status.code, status.message, details: status.details)
    }

    public var status: RpcV1.Status {
        RpcV1.Status(code: self.code, message: self.message, details: self.details)
    }

    public var description: String {
        "\(self.code.name): \(self.message)"
    }

    /// The first detail's reason, if any (e.g. "TOKEN_CLAIMED_BY_OTHER_MDM").
    public var reason: String? {
        self.details.first?.reason
    }

    // MARK: Constructors for the common cases

    public static func invalidArgument(_ message: String, field: String? = nil, reason: String? = nil) -> RPCError {
        RPCError(.invalidArgument, message, details: Self.detail(reason: reason, field: field))
    }

    public static func notFound(_ message: String) -> RPCError {
        RPCError(.notFound, message)
    }

    public static func alreadyExists(_ message: String, reason: String? = nil) -> RPCError {
        RPCError(.alreadyExists, message, details: Self.detail(reason: reason, field: nil))
    }

    public static func failedPrecondition(_ message: String, reason: String? = nil) -> RPCError {
        RPCError(.failedPrecondition, message, details: Self.detail(reason: reason, field: nil))
    }

    public static func permissionDenied(_ message: String) -> RPCError {
        RPCError(.permissionDenied, message)
    }

    public static func unauthenticated(_ message: String) -> RPCError {
        RPCError(.unauthenticated, message)
    }

    public static func resourceExhausted(_ message: String, reason: String? = nil) -> RPCError {
        RPCError(.resourceExhausted, message, details: Self.detail(reason: reason, field: nil))
    }

    public static func unavailable(_ message: String, reason: String? = nil) -> RPCError {
        RPCError(.unavailable, message, details: Self.detail(reason: reason, field: nil))
    }

    public static func unimplemented(_ message: String) -> RPCError {
        RPCError(.unimplemented, message)
    }

    public static func internalError(_ message: String) -> RPCError {
        RPCError(.internal, message)
    }

    public static func deadlineExceeded(_ message: String) -> RPCError {
        RPCError(.deadlineExceeded, message)
    }

    public static func cancelled(_ message: String) -> RPCError {
        RPCError(.cancelled, message)
    }

    private static func detail(reason: String?, field: String?) -> [RpcV1.ErrorDetail] {
        guard reason != nil || field != nil else { return [] }
        return [RpcV1.ErrorDetail(reason: reason ?? "", field: field ?? "")]
    }
}

extension RpcV1.Status {
    /// A status with a code, a message and, when not nil, a machine-readable reason (without one, the generated
    /// memberwise `init(code:message:details:)` is the same).
    public init(code: RpcV1.StatusCode, message: String, reason: String?) {
        self.init()
        self.code = code
        self.message = message
        if let reason {
            self.details = [RpcV1.ErrorDetail(reason: reason)]
        }
    }

    public static let ok = RpcV1.Status(code: .ok, message: "")
}

extension RpcV1.StatusCode {
    /// The code's gRPC name, e.g. "NOT_FOUND": used in logs, metrics labels and audit records.
    public var name: String {
        switch self {
        case .ok: "OK"
        case .cancelled: "CANCELLED"
        case .unknown: "UNKNOWN"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .notFound: "NOT_FOUND"
        case .alreadyExists: "ALREADY_EXISTS"
        case .permissionDenied: "PERMISSION_DENIED"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .failedPrecondition: "FAILED_PRECONDITION"
        case .aborted: "ABORTED"
        case .outOfRange: "OUT_OF_RANGE"
        case .unimplemented: "UNIMPLEMENTED"
        case .internal: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        case .dataLoss: "DATA_LOSS"
        case .unauthenticated: "UNAUTHENTICATED"
        case .unrecognized(let value): "CODE_\(value)"
        }
    }
}
