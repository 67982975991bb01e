public import Logging
public import NIOCore
import VPPLogKeys
import VPPWire

/// What a handler knows about the call it serves.
public struct CallContext: Sendable {
    /// The client-chosen call id, unique among the connection's calls in flight.
    public let callID: UInt64
    /// The full method name, e.g. "/vpp.v1.SystemService/Ping".
    public let method: String
    public let principal: Principal
    /// When the call must be over; the server cancels the handler's task then and answers DEADLINE_EXCEEDED.
    public let deadline: NIODeadline?
    /// The call's metadata; keys are lower-case.
    public let metadata: [String: String]
    /// A logger with the call's metadata (call id, method, principal, tenant). Built when asked for: most calls never
    /// log, and setting metadata costs more than a Ping (swift-log's `StreamLogHandler` renders its metadata on every
    /// change).
    public var logger: Logger { Self.callLogger(self.connectionLogger, callID: self.callID, method: self.method) }
    /// The connection's logger (peer, principal, tenant).
    let connectionLogger: Logger
    /// The client's address, for logs.
    public let remoteAddress: String

    public init(
        callID: UInt64,
        method: String,
        principal: Principal,
        deadline: NIODeadline?,
        metadata: [String: String],
        logger connectionLogger: Logger,
        remoteAddress: String
    ) {
        self.callID = callID
        self.method = method
        self.principal = principal
        self.deadline = deadline
        self.metadata = metadata
        self.connectionLogger = connectionLogger
        self.remoteAddress = remoteAddress
    }

    /// `connectionLogger` with a call's id and method.
    static func callLogger(_ connectionLogger: Logger, callID: UInt64, method: String) -> Logger {
        var logger = connectionLogger
        logger[metadataKey: LogKey.callID] = "\(callID)"
        logger[metadataKey: LogKey.method] = "\(method.prefix(200))"
        return logger
    }

    /// The tenant a tenant principal acts in; PERMISSION_DENIED for an operator key. Routes registered with
    /// `.tenant` only ever see tenant principals, so this throws only when a route was registered wrongly.
    public func requireTenantID() throws -> String {
        guard self.principal.kind == .tenant, let tenantID = self.principal.tenantID else {
            throw RPCError.permissionDenied("This call needs a tenant API key.")
        }
        return tenantID
    }
}
