import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing
import VPPProto
import VPPWire

@testable import VPPClient

/// The client's `ClientConnectionHandler` on a `NIOAsyncTestingChannel`, the server played by the test, the loop's
/// clock simulated (issue 17).
private struct ClientSide {
    let channel: NIOAsyncTestingChannel
    let handler: NIOLoopBound<ClientConnectionHandler>

    /// Connected, the Hello sent and answered.
    static func welcomed() async throws -> ClientSide {
        let channel = NIOAsyncTestingChannel()
        let handler = try await channel.testingEventLoop.executeInContext {
            let handler = ClientConnectionHandler(tls: false)
            try channel.pipeline.syncOperations.addHandler(handler)
            return NIOLoopBound(handler, eventLoop: channel.eventLoop)
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40_000)).get()
        let side = ClientSide(channel: channel, handler: handler)
        let helloFrame = RpcV1.ClientFrame(kind: .hello(RpcV1.Hello(apiKey: "key")))
        let welcome = try await channel.testingEventLoop.executeInContext {
            handler.value.sendHello(helloFrame, channel: channel)
        }
        guard case .hello = try await side.written()?.kind else {
            Issue.record("expected the Hello")
            return side
        }
        try await side.receive(.welcome(RpcV1.Welcome()))
        _ = try await welcome.get()
        return side
    }

    func start(_ method: String = "/vpp.v1.SystemService/Ping", timeout: Duration? = nil) async throws -> (
        UInt64, AsyncThrowingStream<[UInt8], any Error>
    ) {
        let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        let handler = self.handler
        let callID = try await self.channel.testingEventLoop.executeInContext {
            handler.value.startCall(
                method: method,
                request: [],
                timeout: timeout,
                metadata: [:],
                continuation: continuation
            )
        }
        return (callID, stream)
    }

    var isUsable: Bool {
        get async throws {
            let handler = self.handler
            return try await self.channel.testingEventLoop.executeInContext { handler.value.isUsable }
        }
    }

    func receive(_ kind: RpcV1.ServerFrame.Kind) async throws {
        let frame = RpcV1.ServerFrame(kind: kind)
        try await self.channel.writeInbound(ByteBuffer(bytes: frame.serializedBytes()))
    }

    func reply(_ callID: UInt64, status: RpcV1.Status) async throws {
        try await self.receive(.reply(RpcV1.Reply(callId: callID, status: status)))
    }

    /// The frame the client wrote, if any.
    func written() async throws -> RpcV1.ClientFrame? {
        await self.channel.testingEventLoop.run()
        guard var buffer = try await self.channel.readOutbound(as: ByteBuffer.self) else { return nil }
        buffer.moveReaderIndex(forwardBy: FrameDecoder.prefixLength)
        return try RpcV1.ClientFrame(buffer: buffer)
    }

    /// The frames written until none is left.
    func allWritten() async throws -> [RpcV1.ClientFrame] {
        var frames: [RpcV1.ClientFrame] = []
        while let frame = try await self.written() { frames.append(frame) }
        return frames
    }
}

/// How a call's stream ended.
private func outcome(_ stream: AsyncThrowingStream<[UInt8], any Error>) async -> Result<Int, any Error> {
    do {
        var count = 0
        for try await _ in stream { count += 1 }
        return .success(count)
    } catch {
        return .failure(error)
    }
}

@Suite("Client connection handler on an embedded channel, simulated time")
struct ClientConnectionHandlerTests {
    @Test("a server that never answers: the call fails DEADLINE_EXCEEDED at its deadline plus the grace, not before")
    func clientDeadline() async throws {
        let side = try await ClientSide.welcomed()
        let (callID, stream) = try await side.start(timeout: .milliseconds(100))
        guard case .call(let call) = try await side.written()?.kind else {
            Issue.record("expected the Call")
            return
        }
        #expect(call.callId == callID)
        #expect(call.timeoutMs == 100)
        await side.channel.testingEventLoop.advanceTime(by: .milliseconds(2_099))
        // Nothing yet: no Cancel went out.
        #expect(try await side.written() == nil)
        await side.channel.testingEventLoop.advanceTime(by: .milliseconds(1))
        guard case .cancel(let cancel) = try await side.written()?.kind else {
            Issue.record("expected a Cancel")
            return
        }
        #expect(cancel.callId == callID)
        guard case .failure(let error as RPCError) = await outcome(stream) else {
            Issue.record("expected an RPCError")
            return
        }
        #expect(error.code == .deadlineExceeded)
    }

    @Test("an answer before the client-side deadline ends the call and disarms its timer")
    func answeredInTime() async throws {
        let side = try await ClientSide.welcomed()
        let (callID, stream) = try await side.start(timeout: .milliseconds(100))
        _ = try await side.written()
        try await side.reply(callID, status: .ok)
        guard case .success(0) = await outcome(stream) else {
            Issue.record("expected the call to finish OK")
            return
        }
        await side.channel.testingEventLoop.advanceTime(by: .seconds(5))
        #expect(try await side.written() == nil)
    }

    @Test("a draining GoAway: calls already sent are still answered, new ones are never sent")
    func drainingGoAway() async throws {
        let side = try await ClientSide.welcomed()
        let (callID, stream) = try await side.start()
        _ = try await side.written()
        let goAway = RpcV1.GoAway(
            status: RpcV1.Status(code: .unavailable, message: "draining", reason: GoAwayReason.draining.rawValue),
            lastCallId: callID
        )
        try await side.receive(.goAway(goAway))
        #expect(try await side.isUsable == false)

        let (_, refused) = try await side.start()
        guard case .failure(let error as CallNotStarted) = await outcome(refused) else {
            Issue.record("expected CallNotStarted")
            return
        }
        #expect(error.status.code == .unavailable)
        #expect(try await side.written() == nil)

        try await side.reply(callID, status: .ok)
        guard case .success = await outcome(stream) else {
            Issue.record("expected the call sent before the drain to be answered")
            return
        }
    }

    @Test("any other GoAway ends the calls: those above its last call id as never started, the others failed")
    func failingGoAway() async throws {
        let side = try await ClientSide.welcomed()
        let (first, started) = try await side.start()
        let (_, notStarted) = try await side.start()
        _ = try await side.allWritten()
        let goAway = RpcV1.GoAway(
            status: RpcV1.Status(code: .unavailable, message: "idle", reason: GoAwayReason.idleTimeout.rawValue),
            lastCallId: first
        )
        try await side.receive(.goAway(goAway))
        guard case .failure(let error as RPCError) = await outcome(started) else {
            Issue.record("expected an RPCError for the started call")
            return
        }
        #expect(error.code == .unavailable)
        guard case .failure(let refusal as CallNotStarted) = await outcome(notStarted) else {
            Issue.record("expected CallNotStarted for the call above last_call_id")
            return
        }
        #expect(refusal.status.details.first?.reason == GoAwayReason.idleTimeout.rawValue)
    }

    @Test("the channel closing fails the calls in flight with UNAVAILABLE; the connection is no longer usable")
    func closeFailsCalls() async throws {
        let side = try await ClientSide.welcomed()
        let (_, stream) = try await side.start(timeout: .seconds(1))
        _ = try await side.written()
        try await side.channel.close()
        guard case .failure(let error as RPCError) = await outcome(stream) else {
            Issue.record("expected an RPCError")
            return
        }
        #expect(error.code == .unavailable)
        #expect(try await side.isUsable == false)
    }
}
