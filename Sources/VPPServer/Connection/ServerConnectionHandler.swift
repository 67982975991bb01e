import Logging
import NIOCore
import VPPLogKeys
import VPPProto
import VPPWire

/// Sent down a connection's pipeline when the server starts its graceful shutdown.
struct DrainConnectionEvent: Sendable {}

/// Everything a connection handler needs from its server, shared by all connections.
struct ConnectionEnvironment: Sendable {
    var configuration: ServerConfiguration
    var router: RPCRouter
    var authenticator: any Authenticator
    var metrics: ServerMetrics
    var logger: Logger
    var callLogLevel: Logger.Level
    var errorMapper: @Sendable (any Error, Logger) -> RPCError
    /// The authentication and idle deadlines of the server's connections, one timer per event loop.
    var sweepers: ConnectionSweepers
}

/// Raised inside a call's task when the connection's principal may no longer act.
private struct PrincipalRevoked: Error {
    var error: RPCError
}

/// One connection: translates the channel's events into events of its `ServerConnectionStateMachine` and performs
/// the actions it returns (write, close, start or stop a call's task, set or cancel a call's deadline timer). The
/// machine holds everything the connection knows (principal, calls in flight and their deadlines, the last read,
/// the authentication deadline, admission, closing); the handler keeps only what needs the event loop: the context,
/// each call's task and deadline timer, the loop's sweeper, the pending flush. Lives on the channel's event loop;
/// call tasks come back to it with `eventLoop.execute`, so the state is only ever touched on the loop, and every
/// time it passes to the machine is the loop's `now` (simulated in tests).
final class ServerConnectionHandler: ChannelInboundHandler, RemovableChannelHandler, SweptConnection {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private typealias Machine = ServerConnectionStateMachine<Principal>

    private let environment: ConnectionEnvironment
    private var machine: Machine
    /// The task of each call in flight and its deadline timer (set when the machine gives the call a deadline).
    private var tasks: [UInt64: Task<Void, Never>] = [:]
    private var deadlineTimers: [UInt64: Scheduled<Void>] = [:]
    private var context: ChannelHandlerContext?
    /// The loop's sweeper while the connection is open and admitted (it checks the deadlines; no timer of our own).
    private var sweeper: ConnectionSweeper?
    private var flushScheduled = false
    private var logger: Logger
    private var remoteAddress = "unknown"

    /// The most metadata entries a Call may carry (Protos/README.md).
    static let maxCallMetadataEntries = 64

    /// The connection's frame limits, shared with its decoder: raised once the connection authenticated.
    private let frameLimits: FrameLimits?

    init(environment: ConnectionEnvironment, frameLimits: FrameLimits? = nil) {
        self.environment = environment
        self.frameLimits = frameLimits
        let configuration = environment.configuration
        self.machine = Machine(
            maxCallsInFlight: configuration.maxCallsInFlight,
            authenticationTimeout: .nanoseconds(configuration.authenticationTimeout.nanosecondsClamped),
            idleTimeout: .nanoseconds(configuration.idleTimeout.nanosecondsClamped),
            maxCallDuration: configuration.maxCallDuration.map { .nanoseconds($0.nanosecondsClamped) },
            maxFrameBytes: configuration.maxFrameBytes
        )
        self.logger = environment.logger
    }

    /// The loop's clock: real time on a server, simulated time under `NIOAsyncTestingEventLoop`.
    private var now: NIODeadline { self.context?.eventLoop.now ?? .now() }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.remoteAddress = context.remoteAddress.map { "\($0)" } ?? "unknown"
        self.logger[metadataKey: LogKey.peer] = "\(self.remoteAddress)"
        let limit = self.environment.configuration.maxConnections
        guard self.environment.metrics.connectionOpened(limit: limit) else {
            self.logger.warning("Connection refused: the server's connection limit is reached")
            if case .closeWithError(let status) = self.machine.connectionLimitReached(limit) {
                self.closeWithError(status, reason: "connection_limit")
            }
            return
        }
        self.machine.connectionOpened(at: context.eventLoop.now)
        let sweeper = self.environment.sweepers.sweeper(on: context.eventLoop)
        sweeper.add(self)
        self.sweeper = sweeper
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let teardown = self.machine.connectionClosed()
        for callID in teardown.calls {
            self.tasks[callID]?.cancel()
            self.deadlineTimers[callID]?.cancel()
        }
        // The requests of calls cut by the close give their share of the frame budget back.
        if teardown.heldBytes > 0 { self.frameLimits?.budget?.release(teardown.heldBytes) }
        self.tasks.removeAll()
        self.deadlineTimers.removeAll()
        self.sweeper?.remove(self)
        self.sweeper = nil
        if teardown.releasesAdmission {
            self.environment.metrics.connectionClosed()
        }
        // A frame left half-sent gives its share of the server's budget back.
        self.frameLimits?.releaseReservation()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frameBytes = self.unwrapInboundIn(data)
        let frame: RpcV1.ClientFrame
        // Issue 16: a Call's metadata is counted on the wire before anything is decoded (2 million empty entries fit
        // in 4 MiB, and decoding them would hold this event loop for seconds).
        let metadataEntries = frameBytes.withUnsafeReadableBytes { bytes in
            try? ProtoWireScan.count(of: 4, inside: 2, of: bytes, stoppingAbove: Self.maxCallMetadataEntries)
        }
        if let entries = metadataEntries, entries > Self.maxCallMetadataEntries {
            self.environment.metrics.frameRejected(reason: "too_many_elements")
            self.perform(
                self.machine.undecodableFrame(
                    "a Call with more than \(Self.maxCallMetadataEntries) metadata entries, the most a call may carry"
                ),
                reason: "malformed"
            )
            return
        }
        do {
            frame = try RpcV1.ClientFrame(buffer: frameBytes)
        } catch {
            self.perform(self.machine.undecodableFrame("not a ClientFrame (\(error))"), reason: "malformed")
            return
        }
        self.perform(self.machine.frameReceived(frame, at: context.eventLoop.now), reason: "protocol")
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case FrameError.tooLarge(let length, let limit):
            self.environment.metrics.frameRejected(reason: "too_large")
            self.logger.notice(
                "Frame refused: too large",
                metadata: [LogKey.length: "\(length)", LogKey.limit: "\(limit)"]
            )
            self.perform(
                self.machine.undecodableFrame("a frame of \(length) bytes exceeds the limit of \(limit) bytes"),
                reason: nil
            )
        case FrameError.overBudget(let length, let budget):
            self.environment.metrics.frameRejected(reason: "over_budget")
            self.logger.warning(
                "Frame refused: the server's budget for partial frames is spent",
                metadata: [LogKey.length: "\(length)", LogKey.budget: "\(budget)"]
            )
            self.perform(
                self.machine.frameBudgetExhausted(
                    "the server is holding its limit of partial frames (\(budget) bytes); retry this connection later"
                ),
                reason: nil
            )
        case FrameError.truncated(let expected, let received):
            self.environment.metrics.frameRejected(reason: "truncated")
            self.logger.notice(
                "Connection ended inside a frame",
                metadata: [LogKey.expected: "\(expected)", LogKey.received: "\(received)"]
            )
            context.close(promise: nil)
        default:
            self.logger.debug("Connection error", metadata: [LogKey.error: "\(error)"])
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is DrainConnectionEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch self.machine.beginDraining() {
        case .sendGoAway(let goAway):
            self.write(self.frame(.goAway(goAway)))
        case .sendGoAwayAndClose(let goAway):
            self.write(self.frame(.goAway(goAway)))
            self.flushAndClose()
        case .close:
            self.flushAndClose()
        case .none:
            break
        }
    }

    // MARK: Actions

    private func perform(_ action: Machine.FrameAction, reason: String?) {
        switch action {
        case .none:
            break
        case .send(let frame):
            self.write(frame)
            if case .reply(let reply) = frame.kind, let status = reply.status {
                // A call refused before it started (limit reached, draining): count and log it like any call.
                self.recordCallEnd(method: "(refused)", status: status, started: self.now, callID: reply.callId)
            }
        case .authenticate(let hello):
            self.authenticate(hello)
        case .startCall(let call):
            self.startCall(call)
        case .cancelCall(let callID):
            let status = RpcV1.Status(code: .cancelled, message: "The client cancelled the call.")
            self.finishCall(self.machine.callFinished(callID, status: status))
        case .closeWithError(let status):
            if let reason { self.environment.metrics.frameRejected(reason: reason) }
            self.closeWithError(status, reason: nil)
        }
    }

    private func authenticate(_ hello: RpcV1.Hello) {
        guard let context = self.context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let authenticator = self.environment.authenticator
        let apiKey = hello.apiKey
        let clientName = String(hello.clientName.prefix(100))
        let mapper = self.environment.errorMapper
        let logger = self.logger
        Task {
            let result: Result<Principal, RPCError>
            do {
                result = .success(try await authenticator.authenticate(apiKey: apiKey))
            } catch {
                result = .failure(mapper(error, logger))
            }
            loopBound.eventLoop.execute {
                loopBound.value.authenticationFinished(result, clientName: clientName)
            }
        }
    }

    private func authenticationFinished(_ result: Result<Principal, RPCError>, clientName: String) {
        switch result {
        case .success(let principal):
            // Idle time counts from here: checking the key may have taken a while.
            guard self.machine.authenticationSucceeded(principal, at: self.now) else { return }
            // Full-size frames from now on (before, only a Hello could come).
            self.frameLimits?.authenticated()
            self.logger[metadataKey: LogKey.principal] = "\(principal)"
            if let tenantID = principal.tenantID { self.logger[metadataKey: LogKey.tenantID] = "\(tenantID)" }
            self.logger.debug("Connection authenticated", metadata: [LogKey.client: "\(clientName)"])
            let welcome = RpcV1.Welcome(
                principalKind: principal.kind.rawValue,
                tenantId: principal.tenantID ?? "",
                keyId: principal.keyID,
                serverVersion: self.environment.configuration.serverVersion,
                protocolVersion: ServerConnectionStateMachine.protocolVersion,
                maxFrameBytes: UInt32(self.environment.configuration.maxFrameBytes),
                maxCallsInFlight: UInt32(self.environment.configuration.maxCallsInFlight)
            )
            self.write(self.frame(.welcome(welcome)))
        case .failure(let error):
            self.logger.notice("Authentication failed", metadata: [LogKey.status: "\(error.code.name)"])
            self.perform(self.machine.authenticationFailed(error.status), reason: "auth_failed")
        }
    }

    private func startCall(_ call: RpcV1.Call) {
        guard let context = self.context, let principal = self.machine.principal else { return }
        let callID = call.callId

        let route: RPCRouter.Route
        switch self.environment.router.route(for: call.method) {
        case .success(let found):
            route = found
        case .failure(let error):
            self.machine.callRouted(callID, method: self.environment.router.knownName(for: call.method))
            self.finishCall(self.machine.callFinished(callID, status: error.status))
            return
        }
        do {
            try RPCRouter.authorize(principal, for: route)
        } catch {
            self.machine.callRouted(callID, method: route.path)
            self.finishCall(self.machine.callFinished(callID, status: error.status))
            return
        }
        // The request stays in memory while the call runs: it counts in the server's frame budget (issue 16).
        let heldBytes = call.request.count
        if heldBytes > 0, let budget = self.frameLimits?.budget, !budget.reserve(heldBytes) {
            self.environment.metrics.frameRejected(reason: "over_budget")
            self.machine.callRouted(callID, method: route.path)
            let status = RpcV1.Status(
                code: .resourceExhausted,
                message: "The server is holding its limit of request bytes (\(budget.limit)); retry in a moment.",
                reason: GoAwayReason.serverBusy.rawValue
            )
            self.finishCall(self.machine.callFinished(callID, status: status))
            return
        }
        self.machine.callRouted(callID, method: route.path, heldBytes: heldBytes)

        let deadline = self.machine.deadline(of: callID)
        var metadata: [String: String] = [:]
        for entry in call.metadata.prefix(64) {
            metadata[entry.key.lowercased()] = entry.value
        }
        let callContext = CallContext(
            callID: callID,
            method: route.path,
            principal: principal,
            deadline: deadline,
            metadata: metadata,
            logger: self.logger,
            remoteAddress: self.remoteAddress
        )

        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let sink: RPCRouter.StreamSink = { bytes in
            try await eventLoop.flatSubmit {
                loopBound.value.writeStreamMessage(callID, bytes, eventLoop: eventLoop)
            }.get()
        }
        let authenticator = self.environment.authenticator
        let mapper = self.environment.errorMapper
        let request = call.request
        let task = Task {
            let outcome: Result<[UInt8]?, RPCError>
            var revoked = false
            do {
                do {
                    try await authenticator.validate(principal)
                } catch {
                    // Only a key the authenticator refuses is revoked: an outage while re-checking it (the database
                    // unreachable) fails this call with its own status and keeps the connection (issue 16).
                    let status = mapper(error, callContext.logger)
                    if status.code == .unauthenticated { throw PrincipalRevoked(error: status) }
                    throw status
                }
                outcome = .success(try await route.invoke(request, callContext, sink))
            } catch let error as PrincipalRevoked {
                revoked = true
                outcome = .failure(error.error)
            } catch let error as RPCError {
                outcome = .failure(error)
            } catch is CancellationError {
                outcome = .failure(.cancelled("The call was cancelled."))
            } catch {
                outcome = .failure(mapper(error, callContext.logger))
            }
            loopBound.eventLoop.execute {
                loopBound.value.callReturned(callID, outcome, principalRevoked: revoked)
            }
        }
        // The task reports back through `eventLoop.execute`, which cannot run before this method returns: the entries
        // are in place by then.
        self.tasks[callID] = task
        if let deadline {
            self.deadlineTimers[callID] = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
                self.finishCall(self.machine.deadlinePassed(callID, at: self.now))
            }
        }
    }

    private func callReturned(_ callID: UInt64, _ outcome: Result<[UInt8]?, RPCError>, principalRevoked: Bool) {
        switch outcome {
        case .success(let payload):
            // Unary routes always return a payload; streaming ones return nil (their messages went out already).
            self.finishCall(self.machine.callFinished(callID, status: .ok, payload: payload))
        case .failure(let error):
            self.finishCall(self.machine.callFinished(callID, status: error.status))
        }
        if principalRevoked {
            self.perform(
                self.machine.principalRevoked("The connection's API key is no longer valid; closing the connection."),
                reason: nil
            )
        }
    }

    /// Performs a call's end as the machine decided it: stops its timer (and its task, when cancelled or past its
    /// deadline), gives its request bytes back, sends its final Reply (or, when that exceeds the frame limit, the
    /// machine's RESOURCE_EXHAUSTED instead), logs and counts it.
    private func finishCall(_ end: Machine.CallEnd) {
        guard let call = end.call else { return }
        let task = self.tasks.removeValue(forKey: call.callID)
        self.deadlineTimers.removeValue(forKey: call.callID)?.cancel()
        if call.heldBytes > 0 { self.frameLimits?.budget?.release(call.heldBytes) }
        if end.stopsWork { task?.cancel() }
        guard let reply = end.reply else { return }
        var finalStatus = end.status
        if !self.write(reply, failIfTooLarge: true), let oversized = end.oversizedReply {
            finalStatus = end.oversizedStatus ?? finalStatus
            self.write(oversized)
        }
        self.recordCallEnd(method: call.method, status: finalStatus, started: call.started, callID: call.callID)
        if end.action == .sendReplyAndClose {
            self.flushAndClose()
        }
    }

    private func writeStreamMessage(_ callID: UInt64, _ bytes: [UInt8], eventLoop: any EventLoop) -> EventLoopFuture<
        Void
    > {
        guard let context = self.context, self.machine.maySendStreamMessage(callID) else {
            return eventLoop.makeFailedFuture(CancellationError())
        }
        let reply = RpcV1.Reply(callId: callID, message: RpcV1.Payload(data: bytes))
        var buffer = context.channel.allocator.buffer(capacity: bytes.count + 32)
        do {
            try buffer.writeFrame(
                self.frame(.reply(reply)),
                maxFrameBytes: self.environment.configuration.maxFrameBytes
            )
        } catch {
            return context.eventLoop.makeFailedFuture(
                RPCError.resourceExhausted(
                    "A stream message exceeds the frame limit of \(self.environment.configuration.maxFrameBytes) bytes."
                )
            )
        }
        return context.writeAndFlush(self.wrapOutboundOut(buffer))
    }

    private func recordCallEnd(method: String, status: RpcV1.Status, started: NIODeadline, callID: UInt64) {
        let duration = self.now - started
        self.environment.metrics.callFinished(
            method: method,
            status: status.code.name,
            durationNanoseconds: duration.nanoseconds
        )
        let level: Logger.Level =
            status.code == .internal || status.code == .unknown ? .error : self.environment.callLogLevel
        // The call's logger and the line's metadata only when the line is written: most calls log below the level.
        guard level >= self.logger.logLevel else { return }
        let logger = CallContext.callLogger(self.logger, callID: callID, method: method)
        var metadata: Logger.Metadata = [
            LogKey.status: "\(status.code.name)",
            LogKey.durationMilliseconds: "\(Double(duration.nanoseconds) / 1_000_000)",
        ]
        if status.code != .ok { metadata[LogKey.error] = "\(status.message)" }
        logger.log(level: level, "RPC call finished", metadata: metadata)
    }

    // MARK: Writing

    private func frame(_ kind: RpcV1.ServerFrame.Kind) -> RpcV1.ServerFrame {
        RpcV1.ServerFrame(kind: kind)
    }

    /// Writes a frame and schedules one flush for everything written in this event loop tick.
    /// Returns false (and writes nothing) when `failIfTooLarge` is set and the frame exceeds the limit.
    @discardableResult
    private func write(_ frame: RpcV1.ServerFrame, failIfTooLarge: Bool = false) -> Bool {
        guard let context = self.context, self.machine.mayWrite else { return true }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        do {
            try buffer.writeFrame(
                frame,
                maxFrameBytes: failIfTooLarge ? self.environment.configuration.maxFrameBytes : Int(UInt32.max)
            )
        } catch {
            return false
        }
        context.write(self.wrapOutboundOut(buffer), promise: nil)
        if !self.flushScheduled {
            self.flushScheduled = true
            context.eventLoop.assumeIsolated().execute {
                self.flushScheduled = false
                self.context?.flush()
            }
        }
        return true
    }

    private func closeWithError(_ status: RpcV1.Status, reason: String?) {
        if let reason { self.environment.metrics.frameRejected(reason: reason) }
        self.logger.debug(
            "Closing connection",
            metadata: [LogKey.status: "\(status.code.name)", LogKey.message: "\(status.message)"]
        )
        self.write(self.frame(.goAway(RpcV1.GoAway(status: status, lastCallID: self.machine.lastAcceptedCallID))))
        self.flushAndClose()
    }

    private func flushAndClose() {
        guard let context = self.context, self.machine.closeStarted() else { return }
        context.flush()
        context.close(promise: nil)
    }

    /// Called by the loop's sweeper: closes a connection that did not authenticate in time, or that was idle (nothing
    /// read, no call in flight) for the idle timeout; a frame left incomplete that long counts as idle too.
    func sweep(now: NIODeadline) {
        switch self.machine.sweep(at: now) {
        case .authenticationTimedOut(let status):
            self.closeWithError(status, reason: "auth_timeout")
        case .idleTimedOut(let status):
            self.closeWithError(status, reason: "idle")
        case .none:
            break
        }
    }
}

extension RpcV1.GoAway {
    init(status: RpcV1.Status, lastCallID: UInt64) {
        self.init()
        self.status = status
        self.lastCallId = lastCallID
    }
}
