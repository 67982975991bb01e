import Logging
import NIOCore
import NIOEmbedded
import Testing
import VPPProto
import VPPTesting
import VPPWire

@testable import VPPServer

/// One `ServerConnectionHandler` on a `NIOAsyncTestingChannel` (NIO's embedded channel whose loop may be entered
/// from the call and authentication tasks): no socket, and the loop's clock is simulated, so the idle timeout, the
/// authentication timeout and call deadlines are asserted just before and just after they pass (issue 17).
private struct Connection {
    let channel: NIOAsyncTestingChannel

    /// What the handler needs from a server, with a Ping route: "hang" sleeps an hour (cancellably), "big:<n>"
    /// answers n bytes, anything else is echoed.
    static func environment(
        metrics: ServerMetrics = ServerMetrics(),
        _ configure: (inout ServerConfiguration) -> Void = { _ in }
    ) -> ConnectionEnvironment {
        var configuration = ServerConfiguration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        var router = RPCRouter()
        router.register(VppV1.SystemService.Ping.self, requires: .any) { request, _ in
            let command = String(decoding: request.payload, as: UTF8.self)
            var response = VppV1.PingResponse()
            if command == "hang" {
                try await Task.sleep(for: .seconds(3600))
            } else if command.hasPrefix("big:"), let size = Int(command.dropFirst(4)) {
                response.payload = [UInt8](repeating: 0x62, count: size)
                return response
            }
            response.payload = request.payload
            return response
        }
        var logger = Logger(label: "test.connection")
        logger.logLevel = .critical
        return ConnectionEnvironment(
            configuration: configuration,
            router: router,
            authenticator: StaticAuthenticator([TestServer.tenantKey: TestServer.tenantPrincipal]),
            metrics: metrics,
            logger: logger,
            callLogLevel: .debug,
            errorMapper: RPCServer.defaultErrorMapper,
            sweepers: ConnectionSweepers(
                authenticationTimeout: configuration.authenticationTimeout,
                idleTimeout: configuration.idleTimeout
            )
        )
    }

    /// A connected channel with the handler (the connection opened at simulated time 0).
    static func open(_ environment: ConnectionEnvironment) async throws -> Connection {
        let channel = NIOAsyncTestingChannel()
        try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.addHandler(ServerConnectionHandler(environment: environment))
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40_000)).get()
        return Connection(channel: channel)
    }

    /// Opened and authenticated (the Welcome read).
    static func authenticated(_ environment: ConnectionEnvironment) async throws -> Connection {
        let connection = try await Self.open(environment)
        try await connection.send(.hello(RpcV1.Hello(apiKey: TestServer.tenantKey, protocolVersion: 1)))
        guard case .welcome = try await connection.next().kind else {
            Issue.record("expected a Welcome")
            return connection
        }
        return connection
    }

    func send(_ kind: RpcV1.ClientFrame.Kind) async throws {
        let frame = RpcV1.ClientFrame(kind: kind)
        try await self.channel.writeInbound(ByteBuffer(bytes: frame.serializedBytes()))
    }

    func call(_ callID: UInt64, _ payload: String, timeoutMs: UInt64 = 0) async throws {
        let call = RpcV1.Call(
            callId: callID,
            method: "/vpp.v1.SystemService/Ping",
            timeoutMs: timeoutMs,
            request: VppV1.PingRequest(payload).serializedBytes()
        )
        try await self.send(.call(call))
    }

    /// The next frame written, waiting (in real time) for the tasks of calls and authentication to report back.
    func next(timeout: Duration = .seconds(10)) async throws -> RpcV1.ServerFrame {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let frame = try await self.written() { return frame }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw RPCError.deadlineExceeded("no frame was written")
    }

    /// A frame already written, if any (nothing waits).
    func written() async throws -> RpcV1.ServerFrame? {
        await self.channel.testingEventLoop.run()
        guard var buffer = try await self.channel.readOutbound(as: ByteBuffer.self) else { return nil }
        buffer.moveReaderIndex(forwardBy: FrameDecoder.prefixLength)
        return try RpcV1.ServerFrame(buffer: buffer)
    }

    /// The final Reply of the next frame, or nil when the next frame is something else.
    func nextReply() async throws -> RpcV1.Reply? {
        guard case .reply(let reply) = try await self.next().kind else { return nil }
        return reply
    }

    func advance(by amount: TimeAmount) async {
        await self.channel.testingEventLoop.advanceTime(by: amount)
    }
}

extension RpcV1.Status {
    fileprivate var reason: String? { self.details.first?.reason }
}

@Suite("Server connection handler on an embedded channel, simulated time")
struct ServerConnectionHandlerTests {
    @Test("the idle timeout closes an authenticated connection after the configured idle time, not before")
    func idleTimeout() async throws {
        let environment = Connection.environment { $0.idleTimeout = .seconds(1) }
        let connection = try await Connection.authenticated(environment)
        await connection.advance(by: .milliseconds(999))
        #expect(try await connection.written() == nil)
        #expect(connection.channel.isActive)
        await connection.advance(by: .milliseconds(1))
        guard case .goAway(let goAway) = try await connection.next().kind else {
            Issue.record("expected a GoAway")
            return
        }
        #expect(goAway.status?.code == .unavailable)
        #expect(goAway.status?.reason == GoAwayReason.idleTimeout.rawValue)
        #expect(connection.channel.isActive == false)
    }

    @Test("a frame read restarts the idle clock; a call in flight holds it")
    func idleClockRestarts() async throws {
        let environment = Connection.environment { $0.idleTimeout = .seconds(1) }
        let connection = try await Connection.authenticated(environment)
        await connection.advance(by: .milliseconds(750))
        try await connection.send(.ping(RpcV1.Ping(nonce: 7)))
        guard case .pong = try await connection.next().kind else {
            Issue.record("expected a Pong")
            return
        }
        // One second after the Welcome, but only a quarter after the Ping.
        await connection.advance(by: .milliseconds(250))
        #expect(try await connection.written() == nil)
        #expect(connection.channel.isActive)
        // A call that runs for 10 s keeps the connection all that time.
        try await connection.call(1, "hang", timeoutMs: 10_000)
        await connection.advance(by: .milliseconds(9_999))
        #expect(try await connection.written() == nil)
        #expect(connection.channel.isActive)
        await connection.advance(by: .milliseconds(1))
        #expect(try await connection.nextReply()?.status?.code == .deadlineExceeded)
        // Idle from the call's end... which was also the last read 10 s ago: the next sweep closes.
        await connection.advance(by: .milliseconds(250))
        guard case .goAway(let goAway) = try await connection.next().kind else {
            Issue.record("expected a GoAway")
            return
        }
        #expect(goAway.status?.reason == GoAwayReason.idleTimeout.rawValue)
    }

    @Test("a connection that sends no Hello is closed at the authentication timeout, not before")
    func authenticationTimeout() async throws {
        let environment = Connection.environment { $0.authenticationTimeout = .seconds(2) }
        let connection = try await Connection.open(environment)
        await connection.advance(by: .milliseconds(1_999))
        #expect(try await connection.written() == nil)
        #expect(connection.channel.isActive)
        await connection.advance(by: .milliseconds(1))
        guard case .goAway(let goAway) = try await connection.next().kind else {
            Issue.record("expected a GoAway")
            return
        }
        #expect(goAway.status?.code == .unauthenticated)
        #expect(goAway.status?.reason == GoAwayReason.authenticationTimeout.rawValue)
        #expect(connection.channel.isActive == false)
    }

    @Test("a call's deadline passing answers DEADLINE_EXCEEDED, not before; the connection stays")
    func callDeadline() async throws {
        let connection = try await Connection.authenticated(Connection.environment())
        try await connection.call(1, "hang", timeoutMs: 500)
        await connection.advance(by: .milliseconds(499))
        #expect(try await connection.written() == nil)
        await connection.advance(by: .milliseconds(1))
        let reply = try await connection.nextReply()
        #expect(reply?.callId == 1)
        #expect(reply?.status?.code == .deadlineExceeded)
        #expect(connection.channel.isActive)
        // Answered once: the cancelled handler's own end sends nothing more.
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await connection.written() == nil)
    }

    @Test("the server's maximum call duration caps a call without a timeout")
    func maxCallDuration() async throws {
        let environment = Connection.environment { $0.maxCallDuration = .seconds(3) }
        let connection = try await Connection.authenticated(environment)
        try await connection.call(1, "hang")
        await connection.advance(by: .milliseconds(2_999))
        #expect(try await connection.written() == nil)
        await connection.advance(by: .milliseconds(1))
        #expect(try await connection.nextReply()?.status?.code == .deadlineExceeded)
    }

    @Test("graceful close: GoAway first, new calls refused, the connection closes when the last call in flight ends")
    func gracefulClose() async throws {
        let connection = try await Connection.authenticated(Connection.environment())
        try await connection.call(1, "hang", timeoutMs: 1_000)
        try await connection.call(2, "hang", timeoutMs: 2_000)
        connection.channel.pipeline.fireUserInboundEventTriggered(DrainConnectionEvent())
        guard case .goAway(let goAway) = try await connection.next().kind else {
            Issue.record("expected a GoAway")
            return
        }
        #expect(goAway.status?.code == .unavailable)
        #expect(goAway.status?.reason == GoAwayReason.draining.rawValue)
        #expect(goAway.lastCallId == 2)
        #expect(connection.channel.isActive)

        try await connection.call(3, "echo")
        let refused = try await connection.nextReply()
        #expect(refused?.callId == 3)
        #expect(refused?.status?.reason == GoAwayReason.draining.rawValue)

        await connection.advance(by: .milliseconds(1_000))
        #expect(try await connection.nextReply()?.callId == 1)
        #expect(connection.channel.isActive)
        await connection.advance(by: .milliseconds(999))
        #expect(try await connection.written() == nil)
        #expect(connection.channel.isActive)
        await connection.advance(by: .milliseconds(1))
        #expect(try await connection.nextReply()?.callId == 2)
        #expect(connection.channel.isActive == false)
    }

    @Test("calls over the in-flight limit are refused with RESOURCE_EXHAUSTED; the connection stays and serves on")
    func refusedCalls() async throws {
        let environment = Connection.environment { $0.maxCallsInFlight = 1 }
        let connection = try await Connection.authenticated(environment)
        try await connection.call(1, "hang", timeoutMs: 1_000)
        try await connection.call(2, "echo")
        let refused = try await connection.nextReply()
        #expect(refused?.callId == 2)
        #expect(refused?.status?.code == .resourceExhausted)
        #expect(connection.channel.isActive)
        // Once call 1 is over, a call fits again.
        await connection.advance(by: .milliseconds(1_000))
        #expect(try await connection.nextReply()?.callId == 1)
        try await connection.call(3, "echo")
        let served = try await connection.nextReply()
        #expect(served?.callId == 3)
        #expect(served?.status?.code == .ok)
    }

    @Test("connections beyond the connection limit are refused with CONNECTION_LIMIT; closing gives the slot back")
    func connectionLimit() async throws {
        let metrics = ServerMetrics()
        let environment = Connection.environment(metrics: metrics) { $0.maxConnections = 1 }
        let first = try await Connection.authenticated(environment)
        #expect(metrics.openConnectionCount == 1)
        let second = try await Connection.open(environment)
        guard case .goAway(let goAway) = try await second.next().kind else {
            Issue.record("expected a GoAway")
            return
        }
        #expect(goAway.status?.code == .resourceExhausted)
        #expect(goAway.status?.reason == GoAwayReason.connectionLimit.rawValue)
        #expect(second.channel.isActive == false)
        #expect(first.channel.isActive)
        #expect(metrics.openConnectionCount == 1)
        try await first.channel.close()
        #expect(metrics.openConnectionCount == 0)
    }

    @Test("a response over the frame limit is answered RESOURCE_EXHAUSTED instead; the connection stays usable")
    func oversizedReply() async throws {
        let environment = Connection.environment { $0.maxFrameBytes = 1024 }
        let connection = try await Connection.authenticated(environment)
        try await connection.call(1, "big:2000")
        let fallback = try await connection.nextReply()
        #expect(fallback?.callId == 1)
        #expect(fallback?.message == nil)
        #expect(fallback?.status?.code == .resourceExhausted)
        #expect(fallback?.status?.message.contains("1024 bytes") == true)
        try await connection.call(2, "big:100")
        let served = try await connection.nextReply()
        #expect(served?.status?.code == .ok)
        #expect(connection.channel.isActive)
    }
}
