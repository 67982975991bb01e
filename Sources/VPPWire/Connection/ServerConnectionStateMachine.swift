public import VPPProto

/// The machine-readable reason (`ErrorDetail.reason`) of every status that ends a connection.
public enum GoAwayReason: String, Sendable, CaseIterable {
    /// Graceful shutdown: calls already sent are answered, then the server closes.
    case draining = "DRAINING"
    case idleTimeout = "IDLE_TIMEOUT"
    case authenticationTimeout = "AUTHENTICATION_TIMEOUT"
    case authenticationFailed = "AUTHENTICATION_FAILED"
    case keyRevoked = "KEY_REVOKED"
    case unsupportedVersion = "UNSUPPORTED_PROTOCOL_VERSION"
    /// A frame that breaks the protocol's rules (wrong order, bad call id, no kind).
    case protocolError = "PROTOCOL_ERROR"
    /// Bytes that are not a ClientFrame, or a frame over the size limit.
    case malformedFrame = "MALFORMED_FRAME"
    case connectionLimit = "CONNECTION_LIMIT"
    /// The server's budget for frames still arriving is spent: this connection's next frame would not fit.
    case serverBusy = "SERVER_BUSY"
}

/// The server side of one connection's protocol, without I/O: authentication first, then many calls in flight,
/// then draining and closing.
///
/// The connection handler feeds it events (a decoded frame, the authenticator's verdict, a call that ended, a
/// shutdown request) and performs the actions it returns. Every rule of `Protos/README.md` about which frame may come
/// when lives here, so each one is a unit test without sockets.
public struct ServerConnectionStateMachine: Sendable {
    /// The protocol version this server speaks.
    public static let protocolVersion: UInt32 = 1

    public enum State: Equatable, Sendable {
        /// Connected; the first frame must be a Hello.
        case awaitingHello
        /// The Hello's key is being checked; no other frame may come yet.
        case authenticating
        /// Authenticated; calls are accepted.
        case active
        /// Shutting down: calls in flight finish, new ones are refused, the connection closes when none is left.
        case draining
        case closed
    }

    /// What the handler must do after a frame arrived.
    public enum FrameAction: Equatable, Sendable {
        /// Check this Hello's key, then call `authenticationSucceeded` or `authenticationFailed`.
        case authenticate(RpcV1.Hello)
        /// Run this call; report its end with `callFinished`.
        case startCall(RpcV1.Call)
        /// Cancel the call's handler and answer it with status CANCELLED (through `callFinished`).
        case cancelCall(callID: UInt64)
        /// Send this frame (a Pong, or the final Reply of a call refused before it started).
        case send(RpcV1.ServerFrame)
        /// Send a GoAway with this status, then close the connection.
        case closeWithError(RpcV1.Status)
        case none
    }

    /// What the handler must do once a call has ended (normally, by cancellation, by deadline).
    public enum CallEndAction: Equatable, Sendable {
        /// Send the call's final Reply.
        case sendReply
        /// Send the call's final Reply, then close: it was the last call of a draining connection.
        case sendReplyAndClose
        /// The call had already been answered (cancelled, deadline) or the connection is gone: send nothing.
        case drop
    }

    public enum DrainAction: Equatable, Sendable {
        /// Send a GoAway (status UNAVAILABLE, the last accepted call id) and keep serving the calls in flight.
        case sendGoAway(RpcV1.GoAway)
        /// Send a GoAway, then close: nothing was in flight.
        case sendGoAwayAndClose(RpcV1.GoAway)
        /// Close without a word (not authenticated yet) or nothing to do (already draining or closed).
        case close
        case none
    }

    public let maxCallsInFlight: Int
    public private(set) var state: State = .awaitingHello
    private var callsInFlight: Set<UInt64> = []
    /// The highest call id accepted so far (GoAway's last_call_id).
    public private(set) var lastAcceptedCallID: UInt64 = 0

    public init(maxCallsInFlight: Int) {
        precondition(maxCallsInFlight > 0)
        self.maxCallsInFlight = maxCallsInFlight
    }

    public var inFlightCount: Int { self.callsInFlight.count }

    public func isInFlight(_ callID: UInt64) -> Bool { self.callsInFlight.contains(callID) }

    // MARK: Frames

    public mutating func frameReceived(_ frame: RpcV1.ClientFrame) -> FrameAction {
        switch self.state {
        case .closed:
            return .none
        case .awaitingHello:
            guard case .hello(let hello) = frame.kind else {
                return self.fail(.unauthenticated, .protocolError, "The first frame on a connection must be a Hello with an API key.")
            }
            guard hello.protocolVersion == 0 || hello.protocolVersion == Self.protocolVersion else {
                return self.fail(
                    .failedPrecondition,
                    .unsupportedVersion,
                    "Protocol version \(hello.protocolVersion) is not supported; this server speaks version \(Self.protocolVersion)."
                )
            }
            self.state = .authenticating
            return .authenticate(hello)
        case .authenticating:
            return self.fail(.failedPrecondition, .protocolError, "Wait for the Welcome frame before sending anything after the Hello.")
        case .active, .draining:
            return self.frameReceivedWhileAuthenticated(frame)
        }
    }

    private mutating func frameReceivedWhileAuthenticated(_ frame: RpcV1.ClientFrame) -> FrameAction {
        switch frame.kind {
        case .none:
            return self.fail(.invalidArgument, .protocolError, "A ClientFrame must carry a hello, call, cancel or ping.")
        case .hello:
            return self.fail(.invalidArgument, .protocolError, "Hello may only be the first frame of a connection.")
        case .ping(let ping):
            var pong = RpcV1.Pong()
            pong.nonce = ping.nonce
            var out = RpcV1.ServerFrame()
            out.kind = .pong(pong)
            return .send(out)
        case .cancel(let cancel):
            return self.callsInFlight.contains(cancel.callId) ? .cancelCall(callID: cancel.callId) : .none
        case .call(let call):
            guard call.callId != 0 else {
                return self.fail(.invalidArgument, .protocolError, "Call id 0 is reserved; number calls from 1.")
            }
            guard !self.callsInFlight.contains(call.callId) else {
                return self.fail(.invalidArgument, .protocolError, "Call id \(call.callId) is already in flight on this connection.")
            }
            guard self.state == .active else {
                return .send(
                    Self.finalReply(
                        callID: call.callId,
                        status: RpcV1.Status(
                            code: .unavailable,
                            message: "The server is shutting down and accepts no new calls; retry on a new connection.",
                            reason: GoAwayReason.draining.rawValue
                        ),
                        message: nil
                    )
                )
            }
            guard self.callsInFlight.count < self.maxCallsInFlight else {
                return .send(
                    Self.finalReply(
                        callID: call.callId,
                        .resourceExhausted,
                        "Too many calls in flight on this connection (limit \(self.maxCallsInFlight)); wait for some to finish or open another connection."
                    )
                )
            }
            self.callsInFlight.insert(call.callId)
            self.lastAcceptedCallID = max(self.lastAcceptedCallID, call.callId)
            return .startCall(call)
        }
    }

    /// A frame's bytes were not a ClientFrame: the stream cannot be trusted any more.
    public mutating func undecodableFrame(_ reason: String) -> FrameAction {
        guard self.state != .closed else { return .none }
        return self.fail(.invalidArgument, .malformedFrame, "Malformed frame: \(reason). Closing the connection.")
    }

    // MARK: Authentication

    /// The key is good: the handler sends its Welcome.
    public mutating func authenticationSucceeded() -> Bool {
        guard self.state == .authenticating else { return false }
        self.state = .active
        return true
    }

    public mutating func authenticationFailed(_ status: RpcV1.Status) -> FrameAction {
        guard self.state == .authenticating else { return .none }
        self.state = .closed
        var status = status
        if status.details.isEmpty {
            var detail = RpcV1.ErrorDetail()
            detail.reason = GoAwayReason.authenticationFailed.rawValue
            status.details = [detail]
        }
        return .closeWithError(status)
    }

    /// The server cannot hold another partial frame (its frame budget is spent): close with RESOURCE_EXHAUSTED.
    public mutating func frameBudgetExhausted(_ message: String) -> FrameAction {
        guard self.state != .closed else { return .none }
        return self.fail(.resourceExhausted, .serverBusy, message)
    }

    /// The connection's key was revoked or its tenant deleted: close at once.
    public mutating func principalRevoked(_ message: String) -> FrameAction {
        guard self.state != .closed else { return .none }
        return self.fail(.unauthenticated, .keyRevoked, message)
    }

    // MARK: Calls

    /// A call ended: its handler returned or threw, the client cancelled it, or its deadline passed.
    /// Only the first end of a call is answered.
    public mutating func callFinished(_ callID: UInt64) -> CallEndAction {
        guard self.callsInFlight.remove(callID) != nil else { return .drop }
        switch self.state {
        case .active:
            return .sendReply
        case .draining:
            if self.callsInFlight.isEmpty {
                self.state = .closed
                return .sendReplyAndClose
            }
            return .sendReply
        case .closed, .awaitingHello, .authenticating:
            return .drop
        }
    }

    /// Whether a server-streaming call may still send messages.
    public func maySendStreamMessage(_ callID: UInt64) -> Bool {
        (self.state == .active || self.state == .draining) && self.callsInFlight.contains(callID)
    }

    // MARK: Shutdown and timeouts

    /// Graceful shutdown began: finish what is in flight, accept nothing new.
    public mutating func beginDraining() -> DrainAction {
        switch self.state {
        case .awaitingHello, .authenticating:
            self.state = .closed
            return .close
        case .active:
            var goAway = RpcV1.GoAway()
            goAway.status = RpcV1.Status(
                code: .unavailable,
                message: "The server is shutting down; calls already sent are answered; reconnect for new calls.",
                reason: GoAwayReason.draining.rawValue
            )
            goAway.lastCallId = self.lastAcceptedCallID
            if self.callsInFlight.isEmpty {
                self.state = .closed
                return .sendGoAwayAndClose(goAway)
            }
            self.state = .draining
            return .sendGoAway(goAway)
        case .draining, .closed:
            return .none
        }
    }

    /// The authentication timeout fired.
    public mutating func authenticationTimedOut() -> FrameAction {
        guard self.state == .awaitingHello || self.state == .authenticating else { return .none }
        return self.fail(.unauthenticated, .authenticationTimeout, "No Hello with an API key arrived in time; closing the connection.")
    }

    /// Nothing was read and no call was in flight for the idle timeout, or a frame stayed incomplete that long.
    public mutating func idleTimedOut() -> FrameAction {
        guard self.state == .active || self.state == .draining else { return .none }
        return self.fail(.unavailable, .idleTimeout, "The connection was idle for too long; reconnect when you have calls to make.")
    }

    /// The connection is gone (closed by the peer or by us). Every call in flight must be cancelled.
    public mutating func connectionClosed() -> [UInt64] {
        self.state = .closed
        let calls = Array(self.callsInFlight)
        self.callsInFlight.removeAll()
        return calls
    }

    private mutating func fail(_ code: RpcV1.StatusCode, _ reason: GoAwayReason, _ message: String) -> FrameAction {
        self.state = .closed
        return .closeWithError(RpcV1.Status(code: code, message: message, reason: reason.rawValue))
    }

    // MARK: Frames the server sends

    public static func finalReply(callID: UInt64, _ code: RpcV1.StatusCode, _ message: String) -> RpcV1.ServerFrame {
        finalReply(callID: callID, status: RpcV1.Status(code: code, message: message), message: nil)
    }

    public static func finalReply(callID: UInt64, status: RpcV1.Status, message: [UInt8]?) -> RpcV1.ServerFrame {
        var reply = RpcV1.Reply()
        reply.callId = callID
        if let message {
            var payload = RpcV1.Payload()
            payload.data = message
            reply.message = payload
        }
        reply.status = status
        var frame = RpcV1.ServerFrame()
        frame.kind = .reply(reply)
        return frame
    }

    public static func goAway(_ status: RpcV1.Status, lastCallID: UInt64) -> RpcV1.ServerFrame {
        var goAway = RpcV1.GoAway()
        goAway.status = status
        goAway.lastCallId = lastCallID
        var frame = RpcV1.ServerFrame()
        frame.kind = .goAway(goAway)
        return frame
    }
}
