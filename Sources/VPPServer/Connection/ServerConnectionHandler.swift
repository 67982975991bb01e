import Logging
import NIOCore
import VPPProto
import VPPWire
import VPPLogKeys

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

/// One connection: performs what `ServerConnectionStateMachine` decides, runs each call's handler in its own task,
/// and writes the answers back. Lives on the channel's event loop; call tasks come back to it with
/// `eventLoop.execute`, so the state is only ever touched on the loop.
final class ServerConnectionHandler: ChannelInboundHandler, RemovableChannelHandler, SweptConnection {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct RunningCall {
        var task: Task<Void, Never>?
        var deadlineTimer: Scheduled<Void>?
        var method: String
        var started: NIODeadline
        /// The request's bytes, held in the server's frame budget until the call ends.
        var heldBytes = 0
    }

    private let environment: ConnectionEnvironment
    private var machine: ServerConnectionStateMachine
    private var principal: Principal?
    private var calls: [UInt64: RunningCall] = [:]
    private var context: ChannelHandlerContext?
    private var lastRead = NIODeadline.now()
    /// When the connection must have authenticated by; nil once the check ran.
    private var authenticationDeadline: NIODeadline?
    /// The loop's sweeper while the connection is open and admitted (it checks the deadlines; no timer of our own).
    private var sweeper: ConnectionSweeper?
    private var flushScheduled = false
    private var admitted = false
    private var closing = false
    private var logger: Logger
    private var remoteAddress = "unknown"

    /// The most metadata entries a Call may carry (Protos/README.md).
    static let maxCallMetadataEntries = 64

    /// The connection's frame limits, shared with its decoder: raised once the connection authenticated.
    private let frameLimits: FrameLimits?

    init(environment: ConnectionEnvironment, frameLimits: FrameLimits? = nil) {
        self.environment = environment
        self.frameLimits = frameLimits
        self.machine = ServerConnectionStateMachine(maxCallsInFlight: environment.configuration.maxCallsInFlight)
        self.logger = environment.logger
    }

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
        self.lastRead = .now()
        self.admitted = self.environment.metrics.connectionOpened(limit: self.environment.configuration.maxConnections)
        guard self.admitted else {
            self.logger.warning("Connection refused: the server's connection limit is reached")
            self.closeWithError(
                RpcV1.Status(
                    code: .resourceExhausted,
                    message: "The server has reached its connection limit (\(self.environment.configuration.maxConnections)); retry later.",
                    reason: GoAwayReason.connectionLimit.rawValue
                ),
                reason: "connection_limit"
            )
            return
        }
        self.authenticationDeadline = .now() + .nanoseconds(self.environment.configuration.authenticationTimeout.nanosecondsClamped)
        let sweeper = self.environment.sweepers.sweeper(on: context.eventLoop)
        sweeper.add(self)
        self.sweeper = sweeper
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        for callID in self.machine.connectionClosed() {
            self.calls[callID]?.task?.cancel()
            self.calls[callID]?.deadlineTimer?.cancel()
        }
        // The requests of calls cut by the close give their share of the frame budget back.
        let held = self.calls.values.reduce(0) { $0 + $1.heldBytes }
        if held > 0 { self.frameLimits?.budget?.release(held) }
        self.calls.removeAll()
        self.sweeper?.remove(self)
        self.sweeper = nil
        if self.admitted {
            self.admitted = false
            self.environment.metrics.connectionClosed()
        }
        // A frame left half-sent gives its share of the server's budget back.
        self.frameLimits?.releaseReservation()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frameBytes = self.unwrapInboundIn(data)
        self.lastRead = .now()
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
        self.perform(self.machine.frameReceived(frame), reason: "protocol")
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case FrameError.tooLarge(let length, let limit):
            self.environment.metrics.frameRejected(reason: "too_large")
            self.logger.notice("Frame refused: too large", metadata: [LogKey.length: "\(length)", LogKey.limit: "\(limit)"])
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

    private func perform(_ action: ServerConnectionStateMachine.FrameAction, reason: String?) {
        switch action {
        case .none:
            break
        case .send(let frame):
            self.write(frame)
            if case .reply(let reply) = frame.kind, let status = reply.status {
                // A call refused before it started (limit reached, draining): count and log it like any call.
                self.recordCallEnd(method: "(refused)", status: status, started: .now(), callID: reply.callId)
            }
        case .authenticate(let hello):
            self.authenticate(hello)
        case .startCall(let call):
            self.startCall(call)
        case .cancelCall(let callID):
            self.finishCall(callID, status: RpcV1.Status(code: .cancelled, message: "The client cancelled the call."), payload: nil)
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
            guard self.machine.authenticationSucceeded() else { return }
            self.authenticationDeadline = nil
            // Full-size frames from now on (before, only a Hello could come).
            self.frameLimits?.authenticated()
            // Idle time counts from here: checking the key may have taken a while.
            self.lastRead = .now()
            self.principal = principal
            self.logger[metadataKey: LogKey.principal] = "\(principal)"
            if let tenantID = principal.tenantID { self.logger[metadataKey: LogKey.tenantID] = "\(tenantID)" }
            self.logger.debug("Connection authenticated", metadata: [LogKey.client: "\(clientName)"])
            var welcome = RpcV1.Welcome()
            welcome.principalKind = principal.kind.rawValue
            welcome.tenantId = principal.tenantID ?? ""
            welcome.keyId = principal.keyID
            welcome.serverVersion = self.environment.configuration.serverVersion
            welcome.protocolVersion = ServerConnectionStateMachine.protocolVersion
            welcome.maxFrameBytes = UInt32(self.environment.configuration.maxFrameBytes)
            welcome.maxCallsInFlight = UInt32(self.environment.configuration.maxCallsInFlight)
            self.write(self.frame(.welcome(welcome)))
        case .failure(let error):
            self.logger.notice("Authentication failed", metadata: [LogKey.status: "\(error.code.name)"])
            self.perform(self.machine.authenticationFailed(error.status), reason: "auth_failed")
        }
    }

    private func startCall(_ call: RpcV1.Call) {
        guard let context = self.context, let principal = self.principal else { return }
        let callID = call.callId
        let started = NIODeadline.now()

        let route: RPCRouter.Route
        switch self.environment.router.route(for: call.method) {
        case .success(let found):
            route = found
        case .failure(let error):
            let name = self.environment.router.knownName(for: call.method)
            self.calls[callID] = RunningCall(task: nil, deadlineTimer: nil, method: name, started: started)
            self.finishCall(callID, status: error.status, payload: nil)
            return
        }
        do {
            try RPCRouter.authorize(principal, for: route)
        } catch {
            self.calls[callID] = RunningCall(task: nil, deadlineTimer: nil, method: route.path, started: started)
            self.finishCall(callID, status: error.status, payload: nil)
            return
        }
        // The request stays in memory while the call runs: it counts in the server's frame budget (issue 16).
        let heldBytes = call.request.count
        if heldBytes > 0, let budget = self.frameLimits?.budget, !budget.reserve(heldBytes) {
            self.environment.metrics.frameRejected(reason: "over_budget")
            self.calls[callID] = RunningCall(task: nil, deadlineTimer: nil, method: route.path, started: started)
            self.finishCall(
                callID,
                status: RpcV1.Status(
                    code: .resourceExhausted,
                    message: "The server is holding its limit of request bytes (\(budget.limit)); retry in a moment.",
                    reason: GoAwayReason.serverBusy.rawValue
                ),
                payload: nil
            )
            return
        }

        // The deadline: the client's timeout, capped by the server's maximum call duration.
        var timeout: Int64?  // nanoseconds
        if call.timeoutMs > 0 {
            timeout = call.timeoutMs > UInt64(Int64.max / 1_000_000) ? .max : Int64(call.timeoutMs) * 1_000_000
        }
        if let cap = self.environment.configuration.maxCallDuration?.nanosecondsClamped {
            timeout = min(timeout ?? cap, cap)
        }
        let deadline = timeout.map { started + .nanoseconds($0) }
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
        // The task reports back through `eventLoop.execute`, which cannot run before this method returns: the entry
        // is in place by then.
        let deadlineTimer = timeout.map { timeout in
            context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(timeout)) {
                self.deadlinePassed(callID)
            }
        }
        self.calls[callID] = RunningCall(
            task: task,
            deadlineTimer: deadlineTimer,
            method: route.path,
            started: started,
            heldBytes: heldBytes
        )
    }

    private func deadlinePassed(_ callID: UInt64) {
        guard self.machine.isInFlight(callID) else { return }
        self.finishCall(
            callID,
            status: RpcV1.Status(code: .deadlineExceeded, message: "The call's deadline passed before it finished; its work was cancelled."),
            payload: nil
        )
    }

    private func callReturned(_ callID: UInt64, _ outcome: Result<[UInt8]?, RPCError>, principalRevoked: Bool) {
        switch outcome {
        case .success(let payload):
            // Unary routes always return a payload; streaming ones return nil (their messages went out already).
            self.finishCall(callID, status: .ok, payload: payload)
        case .failure(let error):
            self.finishCall(callID, status: error.status, payload: nil)
        }
        if principalRevoked {
            self.perform(self.machine.principalRevoked("The connection's API key is no longer valid; closing the connection."), reason: nil)
        }
    }

    /// Ends a call once: sends its final Reply, stops its task and timer, logs and counts it.
    private func finishCall(_ callID: UInt64, status: RpcV1.Status, payload: [UInt8]?) {
        let action = self.machine.callFinished(callID)
        let running = self.calls.removeValue(forKey: callID)
        running?.deadlineTimer?.cancel()
        if let held = running?.heldBytes, held > 0 { self.frameLimits?.budget?.release(held) }
        if status.code == .cancelled || status.code == .deadlineExceeded {
            running?.task?.cancel()
        }
        guard action != .drop else { return }
        var finalStatus = status
        var reply = ServerConnectionStateMachine.finalReply(callID: callID, status: status, message: payload)
        if !self.write(reply, failIfTooLarge: true) {
            finalStatus = RpcV1.Status(
                code: .resourceExhausted,
                message: "The response exceeds the frame limit of \(self.environment.configuration.maxFrameBytes) bytes; ask for a smaller page."
            )
            reply = ServerConnectionStateMachine.finalReply(callID: callID, status: finalStatus, message: nil)
            self.write(reply)
        }
        self.recordCallEnd(
            method: running?.method ?? "(unknown)",
            status: finalStatus,
            started: running?.started ?? .now(),
            callID: callID
        )
        if action == .sendReplyAndClose {
            self.flushAndClose()
        }
    }

    private func writeStreamMessage(_ callID: UInt64, _ bytes: [UInt8], eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard let context = self.context, !self.closing, self.machine.maySendStreamMessage(callID) else {
            return eventLoop.makeFailedFuture(CancellationError())
        }
        var reply = RpcV1.Reply()
        reply.callId = callID
        var payload = RpcV1.Payload()
        payload.data = bytes
        reply.message = payload
        var buffer = context.channel.allocator.buffer(capacity: bytes.count + 32)
        do {
            try buffer.writeFrame(self.frame(.reply(reply)), maxFrameBytes: self.environment.configuration.maxFrameBytes)
        } catch {
            return context.eventLoop.makeFailedFuture(
                RPCError.resourceExhausted("A stream message exceeds the frame limit of \(self.environment.configuration.maxFrameBytes) bytes.")
            )
        }
        return context.writeAndFlush(self.wrapOutboundOut(buffer))
    }

    private func recordCallEnd(method: String, status: RpcV1.Status, started: NIODeadline, callID: UInt64) {
        let duration = NIODeadline.now() - started
        self.environment.metrics.callFinished(method: method, status: status.code.name, durationNanoseconds: duration.nanoseconds)
        let level: Logger.Level = status.code == .internal || status.code == .unknown ? .error : self.environment.callLogLevel
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
        var frame = RpcV1.ServerFrame()
        frame.kind = kind
        return frame
    }

    /// Writes a frame and schedules one flush for everything written in this event loop tick.
    /// Returns false (and writes nothing) when `failIfTooLarge` is set and the frame exceeds the limit.
    @discardableResult
    private func write(_ frame: RpcV1.ServerFrame, failIfTooLarge: Bool = false) -> Bool {
        guard let context = self.context, !self.closing else { return true }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        do {
            try buffer.writeFrame(frame, maxFrameBytes: failIfTooLarge ? self.environment.configuration.maxFrameBytes : Int(UInt32.max))
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
        self.logger.debug("Closing connection", metadata: [LogKey.status: "\(status.code.name)", LogKey.message: "\(status.message)"])
        self.write(self.frame(.goAway(RpcV1.GoAway(status: status, lastCallID: self.machine.lastAcceptedCallID))))
        self.flushAndClose()
    }

    private func flushAndClose() {
        guard let context = self.context, !self.closing else { return }
        self.closing = true
        context.flush()
        context.close(promise: nil)
    }

    /// Called by the loop's sweeper: closes a connection that did not authenticate in time, or that was idle (nothing
    /// read, no call in flight) for the idle timeout; a frame left incomplete that long counts as idle too.
    func sweep(now: NIODeadline) {
        guard !self.closing else { return }
        if let deadline = self.authenticationDeadline, now >= deadline {
            self.authenticationDeadline = nil
            self.perform(self.machine.authenticationTimedOut(), reason: "auth_timeout")
        }
        let idle = self.environment.configuration.idleTimeout.nanosecondsClamped
        if !self.closing, self.machine.inFlightCount == 0, (now - self.lastRead).nanoseconds >= idle {
            // Before authentication this does nothing (the authentication timeout covers that time).
            self.perform(self.machine.idleTimedOut(), reason: "idle")
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
