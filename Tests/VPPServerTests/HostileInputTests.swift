import NIOCore
import Testing
import VPPClient
import VPPProto
import VPPServer
import VPPTestSupport
import VPPTesting
import VPPWire

@Suite("Hostile input on the RPC port")
struct HostileInputTests {
    private func goAwayCode(_ frames: [RpcV1.ServerFrame]) -> RpcV1.StatusCode? {
        guard case .goAway(let goAway) = frames.last?.kind else { return nil }
        return goAway.status?.code
    }

    private func authenticatedRaw(_ server: TestServer) async throws -> RawConnection {
        let raw = try await RawConnection.connect(port: server.port)
        try await raw.hello(apiKey: TestServer.tenantKey)
        guard case .frame(let frame) = await raw.next(), case .welcome = frame.kind else {
            Issue.record("expected a Welcome")
            return raw
        }
        return raw
    }

    private func serverStillServes(_ server: TestServer) async throws {
        let client = server.client()
        let pong = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("alive"))
        #expect(pong.payload == Array("alive".utf8))
        await client.close()
    }

    @Test("an oversized length prefix is refused at once with a GoAway, before any body is sent")
    func oversizedFrame() async throws {
        let server = try await TestServer.start { $0.maxFrameBytes = 64 * 1024 }
        let raw = try await self.authenticatedRaw(server)
        // Announce 1 GiB and send nothing more: the server must not wait for (or allocate) the body.
        try await raw.send(bytes: [0x40, 0, 0, 0])
        let frames = await raw.framesUntilClosed()
        #expect(self.goAwayCode(frames) == .invalidArgument)
        try await self.serverStillServes(server)
        await server.stop()
    }

    @Test("issue 16: before authentication frames are held to 16 KiB, so an unauthenticated peer cannot pin 4 MiB")
    func preAuthenticationLimit() async throws {
        let server = try await TestServer.start()
        #expect(server.server.configuration.preAuthenticationFrameBytes == 16 * 1024)
        // The attack: a 4 MiB prefix, the body all but one byte, and no Hello. Refused from the prefix alone.
        let raw = try await RawConnection.connect(port: server.port)
        try await raw.send(bytes: [0x00, 0x40, 0x00, 0x00])
        let frames = await raw.framesUntilClosed()
        #expect(self.goAwayCode(frames) == .invalidArgument)
        if case .goAway(let goAway) = frames.last?.kind {
            #expect(goAway.status?.details.first?.reason == GoAwayReason.malformedFrame.rawValue)
            #expect(goAway.status?.message.contains("16384") == true)
        }
        #expect(server.server.frameBudget.inUse == 0)
        // After the Welcome, the full limit applies: a 1 MiB Ping is served.
        let client = server.client()
        let pong = try await client.call(
            VppV1.SystemService.Ping.self,
            VppV1.PingRequest(String(repeating: "a", count: 1024 * 1024))
        )
        #expect(pong.payload.count == 1024 * 1024)
        await client.close()
        await server.stop()
    }

    @Test(
        "issue 16: partial frames share a server-wide budget; past it a new one is refused with SERVER_BUSY, and closing gives it back"
    )
    func frameBudget() async throws {
        let server = try await TestServer.start {
            $0.maxFrameBytes = 1024 * 1024
            $0.frameBudgetBytes = 2 * 1024 * 1024
        }
        // Two peers each announce 1 MiB and send half: the budget is full.
        var holders: [RawConnection] = []
        for _ in 0..<2 {
            let raw = try await self.authenticatedRaw(server)
            try await raw.send(bytes: [0x00, 0x10, 0x00, 0x00] + [UInt8](repeating: 0, count: 512 * 1024))
            holders.append(raw)
        }
        try await eventuallyTrue { server.server.frameBudget.inUse == 2 * 1024 * 1024 }
        // A third is refused as soon as it announces a frame that does not fit.
        let third = try await self.authenticatedRaw(server)
        try await third.send(bytes: [0x00, 0x10, 0x00, 0x00, 0x01])
        let frames = await third.framesUntilClosed()
        #expect(self.goAwayCode(frames) == .resourceExhausted)
        if case .goAway(let goAway) = frames.last?.kind {
            #expect(goAway.status?.details.first?.reason == GoAwayReason.serverBusy.rawValue)
        }
        // The holders go away: their share comes back, and small calls never needed it.
        for raw in holders { await raw.close() }
        try await eventuallyTrue { server.server.frameBudget.inUse == 0 }
        try await self.serverStillServes(server)
        await server.stop()
    }

    private func eventuallyTrue(_ condition: () -> Bool) async throws {
        for _ in 0..<200 where !condition() { try await Task.sleep(for: .milliseconds(25)) }
        #expect(condition())
    }

    @Test("a request of exactly the maximum frame size is served")
    func maximumSizeFrame() async throws {
        let limit = 64 * 1024
        let server = try await TestServer.start { $0.maxFrameBytes = limit }
        let raw = try await self.authenticatedRaw(server)
        // Build a Call whose whole ClientFrame is exactly `limit` bytes by sizing the payload.
        func frame(payloadSize: Int) -> RpcV1.ClientFrame {
            let request = VppV1.PingRequest(payload: [UInt8](repeating: 0x61, count: payloadSize))
            let call = RpcV1.Call(callId: 1, method: VppV1.SystemService.Ping.path, request: request.serializedBytes())
            return RpcV1.ClientFrame(kind: .call(call))
        }
        var size = limit - 100
        while frame(payloadSize: size).serializedBytes().count < limit { size += 1 }
        let exact = frame(payloadSize: size)
        #expect(exact.serializedBytes().count == limit)
        try await raw.send(exact)
        guard case .frame(let answer) = await raw.next(), case .reply(let reply) = answer.kind else {
            Issue.record("expected a reply")
            return
        }
        #expect(reply.status?.code == .ok)
        let echoed = try VppV1.PingResponse(serializedBytes: try #require(reply.message).data)
        #expect(echoed.payload.count == size)
        await raw.close()
        await server.stop()
    }

    @Test("a response larger than the frame limit answers RESOURCE_EXHAUSTED; the connection stays usable")
    func oversizedResponse() async throws {
        let server = try await TestServer.start { $0.maxFrameBytes = 64 * 1024 }
        let client = server.client()
        do {
            _ = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("big:100000"))
            Issue.record("expected RESOURCE_EXHAUSTED")
        } catch let error as RPCError {
            #expect(error.code == .resourceExhausted)
        }
        try await self.serverStillServes(server)
        await server.stop()
    }

    @Test("garbage bytes close only that connection; the server keeps serving")
    func garbage() async throws {
        let server = try await TestServer.start()
        var generator = SplitMix64(seed: 7)
        for round in 0..<20 {
            let raw =
                try await (round % 2 == 0 ? self.authenticatedRaw(server) : RawConnection.connect(port: server.port))
            let count = 5 + Int(generator.next() % 200)
            let body = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            // A well-formed length prefix around garbage, so the body reaches the protobuf decoder.
            var bytes: [UInt8] = [0, 0, UInt8(count >> 8), UInt8(count & 0xFF)]
            bytes += body
            try await raw.send(bytes: bytes)
            _ = await raw.framesUntilClosed()
        }
        try await self.serverStillServes(server)
        await server.stop()
    }

    @Test("a zero-length frame is a frame with no kind: GoAway INVALID_ARGUMENT")
    func zeroLengthFrame() async throws {
        let server = try await TestServer.start()
        let raw = try await self.authenticatedRaw(server)
        try await raw.send(bytes: [0, 0, 0, 0])
        #expect(self.goAwayCode(await raw.framesUntilClosed()) == .invalidArgument)
        await server.stop()
    }

    @Test("a client that disconnects inside a frame leaves the server unharmed")
    func truncatedFrame() async throws {
        let server = try await TestServer.start()
        let raw = try await self.authenticatedRaw(server)
        try await raw.send(bytes: [0, 0, 1, 0, 1, 2, 3])
        await raw.close()
        try await self.serverStillServes(server)
        #expect(await eventually { server.server.metrics.openConnectionCount == 0 })
        await server.stop()
    }

    @Test("a silent client is closed after the authentication timeout")
    func authenticationTimeout() async throws {
        let server = try await TestServer.start { $0.authenticationTimeout = .milliseconds(200) }
        let raw = try await RawConnection.connect(port: server.port)
        #expect(self.goAwayCode(await raw.framesUntilClosed()) == .unauthenticated)
        await server.stop()
    }

    @Test("a client that stops halfway through a frame is closed after the idle timeout")
    func slowClient() async throws {
        let server = try await TestServer.start { $0.idleTimeout = .milliseconds(300) }
        let raw = try await self.authenticatedRaw(server)
        // On a loaded machine the server may close the connection for idleness before these bytes go out; either way
        // it must end with the idle GoAway.
        try? await raw.send(bytes: [0, 0, 0, 50, 1])
        #expect(self.goAwayCode(await raw.framesUntilClosed()) == .unavailable)
        await server.stop()
    }

    @Test("connections beyond the limit are refused with RESOURCE_EXHAUSTED")
    func connectionLimit() async throws {
        let server = try await TestServer.start { $0.maxConnections = 2 }
        let first = try await self.authenticatedRaw(server)
        let second = try await self.authenticatedRaw(server)
        let third = try await RawConnection.connect(port: server.port)
        #expect(self.goAwayCode(await third.framesUntilClosed()) == .resourceExhausted)
        await first.close()
        await second.close()
        await server.stop()
    }

    @Test("call id 0 and a duplicate call id in flight close the connection")
    func badCallIDs() async throws {
        let server = try await TestServer.start()
        for ids: [UInt64] in [[0], [9, 9]] {
            let raw = try await self.authenticatedRaw(server)
            for id in ids {
                var request = VppV1.PingRequest("sleep:1000")
                request.payload = Array("sleep:1000".utf8)
                let call = RpcV1.Call(
                    callId: id,
                    method: VppV1.SystemService.Ping.path,
                    request: request.serializedBytes()
                )
                try await raw.send(RpcV1.ClientFrame(kind: .call(call)))
            }
            #expect(self.goAwayCode(await raw.framesUntilClosed()) == .invalidArgument)
        }
        await server.stop()
    }
}
