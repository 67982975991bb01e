public import NIOCore
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
/// The connection handler feeds it events (the connection opened, a decoded frame, the authenticator's verdict, a
/// call that ended, a deadline that passed, a sweep of the idle check, a shutdown request, the channel gone) and
/// performs the actions it returns. Every rule of `Protos/README.md` about which frame may come when lives here, and
/// so does everything the connection knows while it lives: each state carries its context (the authentication
/// deadline before the Welcome; the principal, the calls in flight with their deadlines and the last read after it;
/// whether the connection holds a slot under the server's connection limit and whether it is closing). The handler
/// keeps only what needs the event loop (the channel, the call tasks, the deadline timers), so each rule is a unit
/// test without sockets, and time is whatever `now` the handler passes in.
///
/// `Principal` is whoever the authenticator said the key belongs to; the machine only carries it.
public struct ServerConnectionStateMachine<Principal: Sendable>: Sendable {
    /// Where the connection is in its life (the context each phase carries is the machine's own).
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

    /// One call in flight, as the machine knows it.
    public struct CallRecord: Equatable, Sendable {
        public let callID: UInt64
        /// The route's name for logs and metrics; "(unknown)" until the handler routed the call.
        public internal(set) var method: String
        public let started: NIODeadline
        /// When the call must have ended: the client's timeout capped by the server's maximum call duration.
        public let deadline: NIODeadline?
        /// The request's bytes, held in the server's frame budget until the call ends.
        public internal(set) var heldBytes: Int
    }

    /// What the handler must do after a frame arrived.
    public enum FrameAction: Equatable, Sendable {
        /// Check this Hello's key, then call `authenticationSucceeded` or `authenticationFailed`.
        case authenticate(RpcV1.Hello)
        /// Run this call (its deadline is `deadline(of:)`); report its end with `callFinished`.
        case startCall(RpcV1.Call)
        /// Cancel the call's handler and answer it with status CANCELLED (through `callFinished`).
        case cancelCall(callID: UInt64)
        /// Send this frame (a Pong, or the final Reply of a call refused before it started).
        case send(RpcV1.ServerFrame)
        /// Send a GoAway with this status (and `lastAcceptedCallID`), then close the connection.
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

    /// A call's end, with everything the handler needs to answer it and let it go.
    public struct CallEnd: Sendable {
        public var action: CallEndAction
        /// The call as it ran; nil when it was not in flight (already answered, or never accepted).
        public var call: CallRecord?
        /// Whether the call's work must be stopped (the client cancelled it, its deadline passed).
        public var stopsWork: Bool
        /// The final Reply to send unless `action` is `.drop`, and its status (what the call is recorded with).
        public var reply: RpcV1.ServerFrame?
        public var status: RpcV1.Status
        /// The final Reply to send instead when `reply` does not fit in a frame, and its status.
        public var oversizedReply: RpcV1.ServerFrame?
        public var oversizedStatus: RpcV1.Status?
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

    /// What a sweep of the connection's deadlines found.
    public enum SweepAction: Equatable, Sendable {
        /// The authentication deadline passed: send a GoAway with this status, then close.
        case authenticationTimedOut(RpcV1.Status)
        /// Nothing was read and no call was in flight for the idle timeout: send a GoAway with this status, then close.
        case idleTimedOut(RpcV1.Status)
        case none
    }

    /// What the handler must let go of once the channel is gone.
    public struct Teardown: Equatable, Sendable {
        /// The calls still in flight: cancel their work (nothing is answered).
        public var calls: [UInt64]
        /// The request bytes those calls held in the server's frame budget.
        public var heldBytes: Int
        /// Whether the connection held a slot under the server's connection limit, to give back now.
        public var releasesAdmission: Bool
    }

    /// What the connection knows before its key is accepted.
    struct Greeting: Sendable {
        /// Whether the connection holds a slot under the server's connection limit.
        var admitted: Bool
        /// When the connection must have authenticated by (nil until the connection opened).
        var authenticationDeadline: NIODeadline?
    }

    /// An authenticated connection.
    struct Session: Sendable {
        var admitted: Bool
        var principal: Principal
        var calls: [UInt64: CallRecord] = [:]
        /// The highest call id accepted so far (GoAway's last_call_id).
        var lastAcceptedCallID: UInt64 = 0
        /// The idle time counts from here: the last frame read, or the Welcome.
        var lastRead: NIODeadline
    }

    /// A connection whose protocol is over; the channel may still be open.
    struct Ended: Sendable {
        var admitted: Bool
        /// Calls that were in flight when the protocol ended: their work is cancelled when the channel goes.
        var calls: [UInt64: CallRecord]
        var lastAcceptedCallID: UInt64
        /// The handler asked the channel to close: nothing more is written.
        var closing = false
    }

    enum Lifecycle: Sendable {
        case awaitingHello(Greeting)
        case authenticating(Greeting)
        case active(Session)
        case draining(Session)
        case closed(Ended)
    }

    /// Stands in while a state's context is changed in place, so that its dictionary of calls is not copied.
    private static var modifying: Lifecycle { .awaitingHello(Greeting(admitted: false, authenticationDeadline: nil)) }

    /// The frames and constants that do not depend on `Principal`.
    private typealias Frames = ServerConnectionStateMachine<Never>

    public let maxCallsInFlight: Int
    public let authenticationTimeout: TimeAmount
    public let idleTimeout: TimeAmount
    /// The longest a call may run, whatever its client asked (nil: only the client's timeout).
    public let maxCallDuration: TimeAmount?
    /// The largest frame the server sends; a final Reply over it is answered RESOURCE_EXHAUSTED instead.
    public let maxFrameBytes: Int
    private var lifecycle: Lifecycle = .awaitingHello(Greeting(admitted: false, authenticationDeadline: nil))

    public init(
        maxCallsInFlight: Int,
        authenticationTimeout: TimeAmount = .seconds(10),
        idleTimeout: TimeAmount = .seconds(300),
        maxCallDuration: TimeAmount? = nil,
        maxFrameBytes: Int = 4 * 1024 * 1024
    ) {
        precondition(maxCallsInFlight > 0)
        self.maxCallsInFlight = maxCallsInFlight
        self.authenticationTimeout = authenticationTimeout
        self.idleTimeout = idleTimeout
        self.maxCallDuration = maxCallDuration
        self.maxFrameBytes = maxFrameBytes
    }

    // MARK: What the states carry

    public var state: State {
        switch self.lifecycle {
        case .awaitingHello: .awaitingHello
        case .authenticating: .authenticating
        case .active: .active
        case .draining: .draining
        case .closed: .closed
        }
    }

    /// The authenticated principal (active and draining only).
    public var principal: Principal? {
        switch self.lifecycle {
        case .active(let session), .draining(let session): session.principal
        case .awaitingHello, .authenticating, .closed: nil
        }
    }

    private var calls: [UInt64: CallRecord] {
        switch self.lifecycle {
        case .active(let session), .draining(let session): session.calls
        case .closed(let ended): ended.calls
        case .awaitingHello, .authenticating: [:]
        }
    }

    /// The highest call id accepted so far (GoAway's last_call_id).
    public var lastAcceptedCallID: UInt64 {
        switch self.lifecycle {
        case .active(let session), .draining(let session): session.lastAcceptedCallID
        case .closed(let ended): ended.lastAcceptedCallID
        case .awaitingHello, .authenticating: 0
        }
    }

    public var inFlightCount: Int { self.calls.count }

    public func isInFlight(_ callID: UInt64) -> Bool { self.calls[callID] != nil }

    /// A call in flight (also after the protocol ended, until the channel is gone).
    public func call(_ callID: UInt64) -> CallRecord? { self.calls[callID] }

    /// When the call's deadline passes (report it with `deadlinePassed`); nil for a call without one.
    public func deadline(of callID: UInt64) -> NIODeadline? { self.calls[callID]?.deadline }

    /// The authentication deadline, while the connection waits for its Welcome.
    public var authenticationDeadline: NIODeadline? {
        switch self.lifecycle {
        case .awaitingHello(let greeting), .authenticating(let greeting): greeting.authenticationDeadline
        case .active, .draining, .closed: nil
        }
    }

    /// Whether the connection holds a slot under the server's connection limit.
    public var isAdmitted: Bool {
        switch self.lifecycle {
        case .awaitingHello(let greeting), .authenticating(let greeting): greeting.admitted
        case .active(let session), .draining(let session): session.admitted
        case .closed(let ended): ended.admitted
        }
    }

    /// Whether frames may still be written: not once the handler began closing the channel.
    public var mayWrite: Bool {
        if case .closed(let ended) = self.lifecycle { return !ended.closing }
        return true
    }

    // MARK: Opening

    /// The connection took a slot under the server's connection limit: the authentication deadline starts now.
    public mutating func connectionOpened(at now: NIODeadline) {
        guard case .awaitingHello(var greeting) = self.lifecycle else { return }
        greeting.admitted = true
        greeting.authenticationDeadline = now + self.authenticationTimeout
        self.lifecycle = .awaitingHello(greeting)
    }

    /// The server already holds `limit` connections: refuse this one with RESOURCE_EXHAUSTED.
    public mutating func connectionLimitReached(_ limit: Int) -> FrameAction {
        guard case .awaitingHello(let greeting) = self.lifecycle, !greeting.admitted else { return .none }
        return self.fail(
            .resourceExhausted,
            .connectionLimit,
            "The server has reached its connection limit (\(limit)); retry later."
        )
    }

    // MARK: Frames

    /// A frame arrived at `now` (the idle time counts from the last one).
    public mutating func frameReceived(_ frame: RpcV1.ClientFrame, at now: NIODeadline) -> FrameAction {
        switch self.lifecycle {
        case .closed:
            return .none
        case .awaitingHello(let greeting):
            guard case .hello(let hello) = frame.kind else {
                return self.fail(
                    .unauthenticated,
                    .protocolError,
                    "The first frame on a connection must be a Hello with an API key."
                )
            }
            guard hello.protocolVersion == 0 || hello.protocolVersion == Frames.protocolVersion else {
                return self.fail(
                    .failedPrecondition,
                    .unsupportedVersion,
                    "Protocol version \(hello.protocolVersion) is not supported; this server speaks version "
                        + "\(Frames.protocolVersion)."
                )
            }
            self.lifecycle = .authenticating(greeting)
            return .authenticate(hello)
        case .authenticating:
            return self.fail(
                .failedPrecondition,
                .protocolError,
                "Wait for the Welcome frame before sending anything after the Hello."
            )
        case .active(var session):
            self.lifecycle = Self.modifying
            session.lastRead = now
            let action = self.sessionAction(for: frame, in: &session, draining: false, at: now)
            self.lifecycle = .active(session)
            return self.finish(action)
        case .draining(var session):
            self.lifecycle = Self.modifying
            session.lastRead = now
            let action = self.sessionAction(for: frame, in: &session, draining: true, at: now)
            self.lifecycle = .draining(session)
            return self.finish(action)
        }
    }

    /// What a frame means to an authenticated connection; `.fail` is a protocol error (the caller closes).
    private enum SessionAction {
        case action(FrameAction)
        case fail(RpcV1.StatusCode, GoAwayReason, String)
    }

    private func sessionAction(
        for frame: RpcV1.ClientFrame,
        in session: inout Session,
        draining: Bool,
        at now: NIODeadline
    ) -> SessionAction {
        switch frame.kind {
        case .none:
            return .fail(.invalidArgument, .protocolError, "A ClientFrame must carry a hello, call, cancel or ping.")
        case .hello:
            return .fail(.invalidArgument, .protocolError, "Hello may only be the first frame of a connection.")
        case .ping(let ping):
            return .action(.send(RpcV1.ServerFrame(kind: .pong(RpcV1.Pong(nonce: ping.nonce)))))
        case .cancel(let cancel):
            return .action(session.calls[cancel.callId] != nil ? .cancelCall(callID: cancel.callId) : .none)
        case .call(let call):
            guard call.callId != 0 else {
                return .fail(.invalidArgument, .protocolError, "Call id 0 is reserved; number calls from 1.")
            }
            guard session.calls[call.callId] == nil else {
                return .fail(
                    .invalidArgument,
                    .protocolError,
                    "Call id \(call.callId) is already in flight on this connection."
                )
            }
            guard !draining else {
                return .action(
                    .send(
                        Frames.finalReply(
                            callID: call.callId,
                            status: RpcV1.Status(
                                code: .unavailable,
                                message:
                                    "The server is shutting down and accepts no new calls; retry on a new connection.",
                                reason: GoAwayReason.draining.rawValue
                            ),
                            message: nil
                        )
                    )
                )
            }
            guard session.calls.count < self.maxCallsInFlight else {
                return .action(
                    .send(
                        Frames.finalReply(
                            callID: call.callId,
                            .resourceExhausted,
                            "Too many calls in flight on this connection (limit \(self.maxCallsInFlight)); wait for some to finish or open another connection."
                        )
                    )
                )
            }
            session.calls[call.callId] = CallRecord(
                callID: call.callId,
                method: "(unknown)",
                started: now,
                deadline: self.callTimeout(call).map { now + $0 },
                heldBytes: 0
            )
            session.lastAcceptedCallID = max(session.lastAcceptedCallID, call.callId)
            return .action(.startCall(call))
        }
    }

    /// The deadline: the client's timeout, capped by the server's maximum call duration.
    private func callTimeout(_ call: RpcV1.Call) -> TimeAmount? {
        var timeout: Int64?  // nanoseconds
        if call.timeoutMs > 0 {
            timeout = call.timeoutMs > UInt64(Int64.max / 1_000_000) ? .max : Int64(call.timeoutMs) * 1_000_000
        }
        if let cap = self.maxCallDuration?.nanoseconds {
            timeout = min(timeout ?? cap, cap)
        }
        return timeout.map { .nanoseconds($0) }
    }

    private mutating func finish(_ action: SessionAction) -> FrameAction {
        switch action {
        case .action(let action): action
        case .fail(let code, let reason, let message): self.fail(code, reason, message)
        }
    }

    /// A frame's bytes were not a ClientFrame: the stream cannot be trusted any more.
    public mutating func undecodableFrame(_ reason: String) -> FrameAction {
        guard self.state != .closed else { return .none }
        return self.fail(.invalidArgument, .malformedFrame, "Malformed frame: \(reason). Closing the connection.")
    }

    // MARK: Authentication

    /// The key belongs to `principal`: the handler sends its Welcome. The idle time counts from `now` (checking the
    /// key may have taken a while).
    public mutating func authenticationSucceeded(_ principal: Principal, at now: NIODeadline) -> Bool {
        guard case .authenticating(let greeting) = self.lifecycle else { return false }
        self.lifecycle = .active(Session(admitted: greeting.admitted, principal: principal, lastRead: now))
        return true
    }

    public mutating func authenticationFailed(_ status: RpcV1.Status) -> FrameAction {
        guard case .authenticating = self.lifecycle else { return .none }
        var status = status
        if status.details.isEmpty {
            status.details = [RpcV1.ErrorDetail(reason: GoAwayReason.authenticationFailed.rawValue)]
        }
        self.end()
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

    /// The handler found the call's route (`method` is its name for logs and metrics) and holds `heldBytes` of its
    /// request in the server's frame budget until it ends.
    public mutating func callRouted(_ callID: UInt64, method: String, heldBytes: Int = 0) {
        self.updateCalls { calls in
            calls[callID]?.method = method
            calls[callID]?.heldBytes = heldBytes
        }
    }

    /// A call ended with `status` (and, for a unary call that succeeded, its response): its handler returned or
    /// threw, the client cancelled it, or its deadline passed. Only the first end of a call is answered.
    public mutating func callFinished(
        _ callID: UInt64,
        status: RpcV1.Status,
        payload: [UInt8]? = nil
    ) -> CallEnd {
        var removed: CallRecord?
        self.updateCalls { removed = $0.removeValue(forKey: callID) }
        var end = CallEnd(
            action: .drop,
            call: removed,
            stopsWork: status.code == .cancelled || status.code == .deadlineExceeded,
            reply: nil,
            status: status
        )
        guard removed != nil else { return end }
        switch self.lifecycle {
        case .active:
            end.action = .sendReply
        case .draining(let session):
            if session.calls.isEmpty {
                self.end()
                end.action = .sendReplyAndClose
            } else {
                end.action = .sendReply
            }
        case .closed, .awaitingHello, .authenticating:
            return end
        }
        end.reply = Frames.finalReply(callID: callID, status: status, message: payload)
        let oversized = RpcV1.Status(
            code: .resourceExhausted,
            message: "The response exceeds the frame limit of \(self.maxFrameBytes) bytes; ask for a smaller page."
        )
        end.oversizedStatus = oversized
        end.oversizedReply = Frames.finalReply(callID: callID, status: oversized, message: nil)
        return end
    }

    /// A call's deadline timer fired at `now`: a call still in flight past its deadline is answered
    /// DEADLINE_EXCEEDED and its work stopped.
    public mutating func deadlinePassed(_ callID: UInt64, at now: NIODeadline) -> CallEnd {
        guard let deadline = self.calls[callID]?.deadline, now >= deadline else {
            return CallEnd(action: .drop, call: nil, stopsWork: false, reply: nil, status: .ok)
        }
        return self.callFinished(
            callID,
            status: RpcV1.Status(
                code: .deadlineExceeded,
                message: "The call's deadline passed before it finished; its work was cancelled."
            )
        )
    }

    /// Whether a server-streaming call may still send messages.
    public func maySendStreamMessage(_ callID: UInt64) -> Bool {
        switch self.lifecycle {
        case .active(let session), .draining(let session): session.calls[callID] != nil
        case .awaitingHello, .authenticating, .closed: false
        }
    }

    private mutating func updateCalls(_ body: (inout [UInt64: CallRecord]) -> Void) {
        switch self.lifecycle {
        case .active(var session):
            self.lifecycle = Self.modifying
            body(&session.calls)
            self.lifecycle = .active(session)
        case .draining(var session):
            self.lifecycle = Self.modifying
            body(&session.calls)
            self.lifecycle = .draining(session)
        case .closed(var ended):
            self.lifecycle = Self.modifying
            body(&ended.calls)
            self.lifecycle = .closed(ended)
        case .awaitingHello, .authenticating:
            break
        }
    }

    // MARK: Shutdown and timeouts

    /// Graceful shutdown began: finish what is in flight, accept nothing new.
    public mutating func beginDraining() -> DrainAction {
        switch self.lifecycle {
        case .awaitingHello, .authenticating:
            self.end()
            return .close
        case .active(let session):
            let goAway = RpcV1.GoAway(
                status: RpcV1.Status(
                    code: .unavailable,
                    message: "The server is shutting down; calls already sent are answered; reconnect for new calls.",
                    reason: GoAwayReason.draining.rawValue
                ),
                lastCallId: session.lastAcceptedCallID
            )
            if session.calls.isEmpty {
                self.end()
                return .sendGoAwayAndClose(goAway)
            }
            self.lifecycle = .draining(session)
            return .sendGoAway(goAway)
        case .draining, .closed:
            return .none
        }
    }

    /// The handler's periodic check at `now`: the authentication deadline before the Welcome, the idle timeout after
    /// it (nothing read and no call in flight for that long; a frame left incomplete that long counts as idle too).
    public mutating func sweep(at now: NIODeadline) -> SweepAction {
        switch self.lifecycle {
        case .awaitingHello(let greeting), .authenticating(let greeting):
            guard let deadline = greeting.authenticationDeadline, now >= deadline,
                case .closeWithError(let status) = self.authenticationTimedOut()
            else { return .none }
            return .authenticationTimedOut(status)
        case .active(let session), .draining(let session):
            guard session.calls.isEmpty, now - session.lastRead >= self.idleTimeout,
                case .closeWithError(let status) = self.idleTimedOut()
            else { return .none }
            return .idleTimedOut(status)
        case .closed:
            return .none
        }
    }

    /// The authentication timeout passed.
    public mutating func authenticationTimedOut() -> FrameAction {
        guard self.state == .awaitingHello || self.state == .authenticating else { return .none }
        return self.fail(
            .unauthenticated,
            .authenticationTimeout,
            "No Hello with an API key arrived in time; closing the connection."
        )
    }

    /// Nothing was read and no call was in flight for the idle timeout, or a frame stayed incomplete that long.
    public mutating func idleTimedOut() -> FrameAction {
        guard self.state == .active || self.state == .draining else { return .none }
        return self.fail(
            .unavailable,
            .idleTimeout,
            "The connection was idle for too long; reconnect when you have calls to make."
        )
    }

    /// The handler begins closing the channel: nothing is written from now on. False when it already did.
    public mutating func closeStarted() -> Bool {
        if case .closed(let ended) = self.lifecycle, ended.closing { return false }
        self.end()
        guard case .closed(var ended) = self.lifecycle else { return false }
        ended.closing = true
        self.lifecycle = .closed(ended)
        return true
    }

    /// The connection is gone (closed by the peer or by us). Every call in flight must be cancelled, and the slot
    /// under the connection limit given back.
    public mutating func connectionClosed() -> Teardown {
        let calls = self.calls
        let teardown = Teardown(
            calls: calls.keys.sorted(),
            heldBytes: calls.values.reduce(0) { $0 + $1.heldBytes },
            releasesAdmission: self.isAdmitted
        )
        self.lifecycle = .closed(
            Ended(admitted: false, calls: [:], lastAcceptedCallID: self.lastAcceptedCallID, closing: true)
        )
        return teardown
    }

    /// The protocol is over: keep what the handler still needs (the calls to cancel, the admission, the last call id).
    private mutating func end() {
        switch self.lifecycle {
        case .awaitingHello(let greeting), .authenticating(let greeting):
            self.lifecycle = .closed(Ended(admitted: greeting.admitted, calls: [:], lastAcceptedCallID: 0))
        case .active(let session), .draining(let session):
            self.lifecycle = .closed(
                Ended(admitted: session.admitted, calls: session.calls, lastAcceptedCallID: session.lastAcceptedCallID)
            )
        case .closed:
            break
        }
    }

    private mutating func fail(_ code: RpcV1.StatusCode, _ reason: GoAwayReason, _ message: String) -> FrameAction {
        self.end()
        return .closeWithError(RpcV1.Status(code: code, message: message, reason: reason.rawValue))
    }
}

// The protocol's constants and the frames the server sends, independent of who the principal is
// (`ServerConnectionStateMachine.finalReply(...)` needs no type argument).
extension ServerConnectionStateMachine where Principal == Never {
    /// The protocol version this server speaks.
    public static var protocolVersion: UInt32 { 1 }

    public static func finalReply(callID: UInt64, _ code: RpcV1.StatusCode, _ message: String) -> RpcV1.ServerFrame {
        finalReply(callID: callID, status: RpcV1.Status(code: code, message: message), message: nil)
    }

    public static func finalReply(callID: UInt64, status: RpcV1.Status, message: [UInt8]?) -> RpcV1.ServerFrame {
        var reply = RpcV1.Reply(callId: callID, status: status)
        if let message {
            reply.message = RpcV1.Payload(data: message)
        }
        return RpcV1.ServerFrame(kind: .reply(reply))
    }

    public static func goAway(_ status: RpcV1.Status, lastCallID: UInt64) -> RpcV1.ServerFrame {
        RpcV1.ServerFrame(kind: .goAway(RpcV1.GoAway(status: status, lastCallId: lastCallID)))
    }
}
