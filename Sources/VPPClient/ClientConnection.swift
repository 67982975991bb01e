import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import VPPProto
import VPPWire

/// One authenticated connection: many calls in flight, answered in any order, matched by call id.
final class ClientConnection: Sendable {
    let channel: any Channel
    let welcome: RpcV1.Welcome
    private let handler: NIOLoopBound<ClientConnectionHandler>

    private init(channel: any Channel, welcome: RpcV1.Welcome, handler: NIOLoopBound<ClientConnectionHandler>) {
        self.channel = channel
        self.welcome = welcome
        self.handler = handler
    }

    /// Connects, sends the Hello, and waits for the Welcome (or the GoAway that refuses the key).
    static func connect(_ configuration: ClientConfiguration) async throws -> ClientConnection {
        let group = configuration.eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        let maxFrameBytes = configuration.maxFrameBytes
        let tls = configuration.security.resolved(host: configuration.host)
        let sslContext = try tls?.makeContext()
        let verifiedName = tls?.hostnameToVerify(host: configuration.host)
        // The handler made for the channel, kept here too: a failed TLS handshake can close the channel (and empty its
        // pipeline) before the Hello goes, and the handler knows why.
        let made = NIOLockedValueBox<NIOLoopBound<ClientConnectionHandler>?>(nil)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.nanoseconds(Int64(configuration.connectTimeout.components.seconds) * 1_000_000_000))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: sslContext, serverHostname: verifiedName)
                            )
                        }
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrameBytes))
                        )
                        let handler = ClientConnectionHandler(tls: tls != nil)
                        made.withLockedValue { $0 = NIOLoopBound(handler, eventLoop: channel.eventLoop) }
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            throw RPCError.unavailable(
                "Cannot connect to \(configuration.host):\(configuration.port): \(error). Is the server running there?"
            )
        }
        let hello = RpcV1.Hello(
            apiKey: configuration.apiKey,
            clientName: configuration.clientName,
            protocolVersion: ServerConnectionStateMachine.protocolVersion
        )
        let frame = RpcV1.ClientFrame(kind: .hello(hello))
        let started = channel.eventLoop.flatSubmit {
            () -> EventLoopFuture<(RpcV1.Welcome, NIOLoopBound<ClientConnectionHandler>)> in
            guard let bound = made.withLockedValue({ $0 }) else {
                return channel.eventLoop.makeFailedFuture(
                    RPCError.unavailable("The connection closed while it was being set up.")
                )
            }
            return bound.value.sendHello(frame, channel: channel).map { ($0, bound) }
        }
        let welcome: RpcV1.Welcome
        let handler: NIOLoopBound<ClientConnectionHandler>
        do {
            (welcome, handler) = try await started.get()
        } catch {
            try? await channel.close()
            throw error
        }
        return ClientConnection(channel: channel, welcome: welcome, handler: handler)
    }

    /// Whether new calls may go on this connection (not closed, no GoAway received).
    var isUsable: Bool {
        get async {
            let handler = self.handler
            return (try? await self.channel.eventLoop.submit { handler.value.isUsable }.get()) ?? false
        }
    }

    /// Sends a call and returns a stream of its response messages; the stream ends with the call's final status
    /// (finishing normally for OK, throwing `RPCError` otherwise).
    func start(
        method: String,
        request: [UInt8],
        timeout: Duration?,
        metadata: [String: String]
    ) -> (callID: EventLoopFuture<UInt64>, responses: AsyncThrowingStream<[UInt8], any Error>) {
        let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        let handler = self.handler
        let callID = self.channel.eventLoop.submit {
            handler.value.startCall(
                method: method,
                request: request,
                timeout: timeout,
                metadata: metadata,
                continuation: continuation
            )
        }
        return (callID, stream)
    }

    func cancel(callID: UInt64) {
        let handler = self.handler
        self.channel.eventLoop.execute {
            handler.value.cancelCall(callID)
        }
    }

    func ping(nonce: UInt64) async throws {
        let handler = self.handler
        try await self.channel.eventLoop.flatSubmit {
            handler.value.ping(nonce: nonce)
        }.get()
    }

    func close() async {
        try? await self.channel.close()
    }
}

/// A call the server never started (it closed the connection first): sending it again cannot run it twice.
struct CallNotStarted: Error {
    var status: RpcV1.Status
}

/// The client side of the protocol on the event loop: translates the channel's events and the caller's requests into
/// events of its `ClientConnectionStateMachine` (which holds the Hello's waiter, the calls in flight by call id with
/// their deadlines, the pings, whether a GoAway came or the channel closed, and the first failure) and performs the
/// actions it returns. It keeps only what needs the event loop: the context and the deadline timers.
final class ClientConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    typealias CallReceiver = AsyncThrowingStream<[UInt8], any Error>.Continuation
    private typealias Machine = ClientConnectionStateMachine<
        CallReceiver, EventLoopPromise<Void>, EventLoopPromise<RpcV1.Welcome>
    >

    private var context: ChannelHandlerContext?
    private var machine = Machine()
    /// Client-side deadline timers, one per call the machine gave a deadline.
    private var deadlineTimers: [UInt64: Scheduled<Void>] = [:]
    /// Whether the connection runs TLS (error messages say what to check).
    private let tls: Bool

    init(tls: Bool) {
        self.tls = tls
    }

    var isUsable: Bool { self.machine.isUsable }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func sendHello(_ frame: RpcV1.ClientFrame, channel: any Channel) -> EventLoopFuture<RpcV1.Welcome> {
        let promise = channel.eventLoop.makePromise(of: RpcV1.Welcome.self)
        switch self.machine.helloSent(promise) {
        case .send:
            self.send(frame)
        case .fail(let promise, let error):
            promise.fail(error)
        }
        return promise.futureResult
    }

    func startCall(
        method: String,
        request: [UInt8],
        timeout: Duration?,
        metadata: [String: String],
        continuation: CallReceiver
    ) -> UInt64 {
        let now = self.context?.eventLoop.now ?? .now()
        let callID: UInt64
        let deadline: NIODeadline?
        switch self.machine.startCall(continuation, timeout: timeout.map(Self.timeAmount), at: now) {
        case .refuse(let refused, let continuation, let status):
            // Closed (or told to go away) since the caller picked this connection: the call was never sent.
            continuation.finish(throwing: CallNotStarted(status: status))
            return refused
        case .send(let id, let callDeadline):
            callID = id
            deadline = callDeadline
        }
        var call = RpcV1.Call(
            callId: callID,
            method: method,
            metadata: metadata.sorted { $0.key < $1.key }.map { key, value in RpcV1.KeyValue(key: key, value: value) },
            request: request
        )
        if let timeout {
            let (seconds, attoseconds) = timeout.components
            call.timeoutMs = UInt64(max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000))
        }
        let frame = RpcV1.ClientFrame(kind: .call(call))
        if let deadline, let context = self.context {
            self.deadlineTimers[callID] = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
                self.expire(callID)
            }
        }
        if !self.send(frame), let continuation = self.machine.callNotSent(callID) {
            self.deadlineTimers.removeValue(forKey: callID)?.cancel()
            continuation.finish(throwing: RPCError.resourceExhausted("The request is larger than the frame limit."))
        }
        return callID
    }

    /// A duration as the event loop counts it (saturating, like the server's conversion).
    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(
            seconds.multipliedReportingOverflow(by: 1_000_000_000).partialValue + attoseconds / 1_000_000_000
        )
    }

    /// The server did not answer within the deadline and its grace: fail the call here and tell the server.
    private func expire(_ callID: UInt64) {
        self.deadlineTimers.removeValue(forKey: callID)
        guard let continuation = self.machine.deadlinePassed(callID, at: self.context?.eventLoop.now ?? .now()) else {
            return
        }
        continuation.finish(
            throwing: RPCError.deadlineExceeded("The server did not answer before the call's deadline.")
        )
        self.sendCancel(callID)
    }

    func cancelCall(_ callID: UInt64) {
        self.deadlineTimers.removeValue(forKey: callID)?.cancel()
        guard let continuation = self.machine.cancelRequested(callID) else { return }
        continuation.finish(throwing: CancellationError())
        self.sendCancel(callID)
    }

    private func sendCancel(_ callID: UInt64) {
        self.send(RpcV1.ClientFrame(kind: .cancel(RpcV1.Cancel(callId: callID))))
    }

    func ping(nonce: UInt64) -> EventLoopFuture<Void> {
        guard let context = self.context, self.machine.isUsable else {
            return MultiThreadedEventLoopGroup.singleton.any().makeFailedFuture(
                RPCError.unavailable("The connection is closed.")
            )
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        self.machine.pingSent(nonce: nonce, promise)
        self.send(RpcV1.ClientFrame(kind: .ping(RpcV1.Ping(nonce: nonce))))
        return promise.futureResult
    }

    @discardableResult
    private func send(_ frame: RpcV1.ClientFrame) -> Bool {
        guard let context = self.context else { return false }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        do {
            try buffer.writeFrame(frame)
        } catch {
            return false
        }
        context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
        return true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame: RpcV1.ServerFrame
        do {
            frame = try RpcV1.ServerFrame(buffer: self.unwrapInboundIn(data))
        } catch {
            self.perform(
                self.machine.undecodableFrame(
                    RPCError.internalError("The server sent a frame that is not a ServerFrame: \(error).")
                )
            )
            context.close(promise: nil)
            return
        }
        switch self.machine.frameReceived(frame) {
        case .welcome(let promise, let welcome):
            promise.succeed(welcome)
        case .reply(let callID, let continuation, let message, let final):
            if let message {
                continuation.yield(message)
            }
            if let status = final {
                self.deadlineTimers.removeValue(forKey: callID)?.cancel()
                if status.code == .ok {
                    continuation.finish()
                } else {
                    continuation.finish(throwing: RPCError(status: status))
                }
            }
        case .pong(let promise):
            promise.succeed(())
        case .fail(let failure):
            self.perform(failure)
        case .none:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if self.machine.isAwaitingWelcome && !self.tls {
            self.perform(
                self.machine.connectionClosed(
                    RPCError.unavailable(
                        "The server closed the connection before answering the Hello. " + Self.tlsPortAdvice
                    )
                )
            )
        } else {
            let error = RPCError.unavailable("The connection to the server was closed.")
            self.perform(self.machine.connectionClosed(error))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.machine.isAwaitingWelcome && !self.tls {
            self.perform(
                self.machine.connectionClosed(
                    RPCError.unavailable(
                        "The server answered the Hello with something that is not a frame of this protocol (\(error)). "
                            + Self.tlsPortAdvice
                    )
                )
            )
        } else {
            self.perform(self.machine.connectionClosed(RPCError.unavailable(Self.describe(error, tls: self.tls))))
        }
        context.close(promise: nil)
    }

    /// What to try when a plain-TCP connection fails before the Welcome: the port may serve TLS.
    static let tlsPortAdvice =
        "If it serves TLS on this port, connect with TLS: drop --plaintext (TLS is the default off loopback), or give "
        + "the server's CA with --ca-file."

    /// One line that says what went wrong and what to check; TLS failures are the common case worth explaining.
    static func describe(_ error: any Error, tls: Bool) -> String {
        switch error {
        case NIOSSLError.handshakeFailed(let reasons):
            let detail = "\(reasons)"
            if detail.contains("CERTIFICATE_VERIFY_FAILED") {
                return "The server's TLS certificate cannot be verified (\(detail)). If the server uses a private CA, "
                    + "give its certificate with --ca-file (VPP_CA_FILE)."
            }
            return "The TLS handshake with the server failed (\(detail)). Does the server serve TLS on this port? "
                + "For a server that serves plain TCP, use --plaintext."
        case let error as NIOSSLExtraError where error == .failedToValidateHostname:
            return "The server's TLS certificate is not for this address (\(error)). Connect by a name the "
                + "certificate carries, or give that name with --tls-server-name."
        case is NIOSSLError where tls:
            return "The TLS connection failed (\(error)). Does the server serve TLS on this port?"
        default:
            return "The connection failed: \(error)."
        }
    }

    /// Ends what a failure of the connection ends: every timer, whoever waits for the Welcome, every call and ping.
    private func perform(_ failure: Machine.Failure) {
        for timer in self.deadlineTimers.values { timer.cancel() }
        self.deadlineTimers.removeAll()
        if let status = failure.notStartedStatus {
            for continuation in failure.notStarted.values {
                continuation.finish(throwing: CallNotStarted(status: status))
            }
        }
        failure.greeting?.fail(failure.error)
        for continuation in failure.calls.values {
            continuation.finish(throwing: failure.error)
        }
        for promise in failure.pings {
            promise.fail(failure.error)
        }
    }
}
