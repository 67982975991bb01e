public import NIOCore
public import VPPProto

/// The client side of one connection's protocol, without I/O: the Hello waits for its Welcome, calls go out numbered
/// upwards and are matched to their Replies by call id, pings to their Pongs by nonce, and a GoAway or the end of the
/// channel fails what it must.
///
/// The client's connection handler feeds it events (the Hello sent, a call started or cancelled, a frame read, a
/// call's client-side deadline passed, the channel gone) and performs the actions it returns. Each state carries its
/// context: whoever waits for the Welcome, every call in flight (whoever receives its messages, its deadline), every
/// ping, and the first failure. What waits is generic (`Call` receives a call's messages and end, `Ping` a Pong,
/// `Greeting` the Welcome): the handler passes its continuations and promises, tests pass plain values, and the
/// machine only hands them back in its actions. The handler keeps only what needs the event loop (the context, the
/// deadline timers).
public struct ClientConnectionStateMachine<Call: Sendable, Ping: Sendable, Greeting: Sendable>: Sendable {
    /// Where the connection is in its life.
    public enum State: Equatable, Sendable {
        /// Open, and no GoAway came: new calls may go (`isAwaitingWelcome` says whether the Hello is answered).
        case open
        /// A GoAway came: no new calls; after a drain the calls already sent are still answered.
        case goingAway
        /// The channel is gone.
        case closed
    }

    /// A call in flight: who receives its messages, and when the client gives up on it by itself.
    struct InFlight: Sendable {
        var receiver: Call
        var deadline: NIODeadline?
    }

    /// What the connection knows while it is open.
    struct Context: Sendable {
        /// Whoever waits for the Welcome, until it comes.
        var greeting: Greeting?
        var calls: [UInt64: InFlight] = [:]
        var pings: [UInt64: Ping] = [:]
        /// Why the connection failed, the first time it did (said again to a Hello sent after the channel closed).
        var failure: RPCError?
    }

    enum Lifecycle: Sendable {
        case open(Context)
        case goingAway(Context)
        case closed(Context)
    }

    /// What the handler must do with a Hello.
    public enum HelloAction: Sendable {
        /// Send it; the Welcome comes back as `ReadAction.welcome`.
        case send
        /// The connection closed before the Hello could go: fail whoever waits with this error.
        case fail(Greeting, RPCError)
    }

    /// What the handler must do with a new call.
    public enum StartAction: Sendable {
        /// Send the call under this id; when `deadline` is set, arm a timer for it (report it with `deadlinePassed`).
        case send(callID: UInt64, deadline: NIODeadline?)
        /// The connection closed or was told to go away since the caller picked it: the call was never sent (safe to
        /// send again elsewhere). End it with this status.
        case refuse(callID: UInt64, Call, RpcV1.Status)
    }

    /// Everything a failure of the connection ends; the handler cancels every deadline timer.
    public struct Failure: Sendable {
        public var error: RPCError
        /// Whoever waited for the Welcome: fail it with `error`.
        public var greeting: Greeting?
        /// Calls the server never started (above a GoAway's last call id): end them with `notStartedStatus`.
        public var notStarted: [UInt64: Call] = [:]
        public var notStartedStatus: RpcV1.Status?
        /// Every other call in flight: fail it with `error`.
        public var calls: [UInt64: Call] = [:]
        public var pings: [Ping] = []
    }

    /// What the handler must do after a frame arrived.
    public enum ReadAction: Sendable {
        /// The Welcome came: hand it to whoever waited.
        case welcome(Greeting, RpcV1.Welcome)
        /// A Reply for a call in flight: deliver its message (if any); a final status ends the call (cancel its timer;
        /// OK finishes it, any other status fails it).
        case reply(callID: UInt64, Call, message: [UInt8]?, final: RpcV1.Status?)
        /// The Pong of a ping.
        case pong(Ping)
        /// A GoAway that ends the connection (not a drain): fail what it ends.
        case fail(Failure)
        case none
    }

    /// How long after a call's deadline the client gives up on its own: the server enforces deadlines, but a server
    /// that stops answering must not leave a call waiting forever.
    public let deadlineGrace: TimeAmount
    private var lifecycle: Lifecycle = .open(Context())
    private var nextCallID: UInt64 = 1

    public init(deadlineGrace: TimeAmount = .seconds(2)) {
        self.deadlineGrace = deadlineGrace
    }

    // MARK: What the states carry

    public var state: State {
        switch self.lifecycle {
        case .open: .open
        case .goingAway: .goingAway
        case .closed: .closed
        }
    }

    /// Whether new calls may go on this connection (not closed, no GoAway received).
    public var isUsable: Bool { self.state == .open }

    /// Whether a Hello was sent and its Welcome has not come.
    public var isAwaitingWelcome: Bool { self.context.greeting != nil }

    public var inFlightCount: Int { self.context.calls.count }

    /// When the client gives up on a call in flight by itself.
    public func deadline(of callID: UInt64) -> NIODeadline? { self.context.calls[callID]?.deadline }

    private var context: Context {
        switch self.lifecycle {
        case .open(let context), .goingAway(let context), .closed(let context): context
        }
    }

    /// Changes the current state's context in place (no copy of its dictionaries).
    private mutating func update<T>(_ body: (inout Context) -> T) -> T {
        switch self.lifecycle {
        case .open(var context):
            self.lifecycle = .closed(Context())
            defer { self.lifecycle = .open(context) }
            return body(&context)
        case .goingAway(var context):
            self.lifecycle = .closed(Context())
            defer { self.lifecycle = .goingAway(context) }
            return body(&context)
        case .closed(var context):
            self.lifecycle = .closed(Context())
            defer { self.lifecycle = .closed(context) }
            return body(&context)
        }
    }

    // MARK: Events from the caller

    /// The Hello is about to go; `greeting` waits for the Welcome.
    public mutating func helloSent(_ greeting: Greeting) -> HelloAction {
        if case .closed(let context) = self.lifecycle {
            // The connection failed before the Hello could go (a TLS handshake refused, say): say why.
            let error = context.failure ?? RPCError.unavailable("The connection closed while it was being set up.")
            return .fail(greeting, error)
        }
        self.update { $0.greeting = greeting }
        return .send
    }

    /// A new call: it takes the next call id. With a `timeout`, the client gives up on it `deadlineGrace` after it.
    public mutating func startCall(_ receiver: Call, timeout: TimeAmount?, at now: NIODeadline) -> StartAction {
        let callID = self.nextCallID
        self.nextCallID += 1
        guard self.isUsable else {
            let status = RpcV1.Status(
                code: .unavailable,
                message: "The connection closed before the call was sent; retry."
            )
            return .refuse(callID: callID, receiver, status)
        }
        let deadline = timeout.map { now + $0 + self.deadlineGrace }
        self.update { $0.calls[callID] = InFlight(receiver: receiver, deadline: deadline) }
        return .send(callID: callID, deadline: deadline)
    }

    /// The call's frame could not be written (larger than the frame limit): it is over; end it.
    public mutating func callNotSent(_ callID: UInt64) -> Call? {
        self.update { $0.calls.removeValue(forKey: callID)?.receiver }
    }

    /// The caller cancelled the call: end it with a cancellation and send the server a Cancel (nil: already over).
    public mutating func cancelRequested(_ callID: UInt64) -> Call? {
        self.update { $0.calls.removeValue(forKey: callID)?.receiver }
    }

    /// A call's timer fired at `now`: a call still in flight past its deadline (and grace) fails with
    /// DEADLINE_EXCEEDED here, and the server is sent a Cancel (nil: already over).
    public mutating func deadlinePassed(_ callID: UInt64, at now: NIODeadline) -> Call? {
        guard let deadline = self.context.calls[callID]?.deadline, now >= deadline else { return nil }
        return self.update { $0.calls.removeValue(forKey: callID)?.receiver }
    }

    /// A Ping goes with this nonce; `ping` waits for its Pong. Only on a usable connection (check `isUsable`).
    public mutating func pingSent(nonce: UInt64, _ ping: Ping) {
        self.update { $0.pings[nonce] = ping }
    }

    // MARK: Events from the server

    public mutating func frameReceived(_ frame: RpcV1.ServerFrame) -> ReadAction {
        switch frame.kind {
        case .welcome(let welcome):
            guard
                let greeting = self.update({ context -> Greeting? in
                    defer { context.greeting = nil }
                    return context.greeting
                })
            else { return .none }
            return .welcome(greeting, welcome)
        case .reply(let reply):
            guard let call = self.context.calls[reply.callId] else { return .none }
            if reply.status != nil {
                self.update { _ = $0.calls.removeValue(forKey: reply.callId) }
            }
            return .reply(callID: reply.callId, call.receiver, message: reply.message?.data, final: reply.status)
        case .pong(let pong):
            guard let ping = self.update({ $0.pings.removeValue(forKey: pong.nonce) }) else { return .none }
            return .pong(ping)
        case .goAway(let goAway):
            return self.goAwayReceived(goAway)
        case .none:
            return .none
        }
    }

    private mutating func goAwayReceived(_ goAway: RpcV1.GoAway) -> ReadAction {
        let context: Context
        switch self.lifecycle {
        case .open(let current), .goingAway(let current):
            context = current
            self.lifecycle = .goingAway(current)
        case .closed:
            // The channel is gone and everything on it already failed.
            return .none
        }
        let status = goAway.status ?? RpcV1.Status(code: .unavailable, message: "The server closed the connection.")
        guard status.details.first?.reason != GoAwayReason.draining.rawValue || context.greeting != nil else {
            // Draining: every call already sent is still answered (possibly with UNAVAILABLE); new calls go to a new
            // connection, since this one is no longer usable.
            return .none
        }
        // Not a drain: the connection is over, and so is every call on it. Calls above last_call_id never started on
        // the server (this client numbers calls upwards), so they are safe to send again.
        var notStarted: [UInt64: Call] = [:]
        self.update { context in
            for (callID, call) in context.calls where callID > goAway.lastCallId {
                context.calls.removeValue(forKey: callID)
                notStarted[callID] = call.receiver
            }
        }
        var failure = self.failAll(RPCError(status: status))
        failure.notStarted = notStarted
        failure.notStartedStatus = status
        return .fail(failure)
    }

    /// The server sent bytes that are not a ServerFrame: everything fails with `error` (the handler closes).
    public mutating func undecodableFrame(_ error: RPCError) -> Failure {
        self.failAll(error)
    }

    /// The channel is gone, or failed (the handler closes it): everything still waiting fails with `error` (build it
    /// with `isAwaitingWelcome` in mind: a close before the Welcome says more about the port than about the call).
    public mutating func connectionClosed(_ error: RPCError) -> Failure {
        let failure = self.failAll(error)
        self.lifecycle = .closed(self.context)
        return failure
    }

    /// Ends everything waiting with `error`, remembered as the connection's failure unless one came first.
    private mutating func failAll(_ error: RPCError) -> Failure {
        self.update { context in
            if context.failure == nil { context.failure = error }
            let failure = Failure(
                error: error,
                greeting: context.greeting,
                calls: context.calls.mapValues(\.receiver),
                pings: Array(context.pings.values)
            )
            context.greeting = nil
            context.calls.removeAll()
            context.pings.removeAll()
            return failure
        }
    }
}
