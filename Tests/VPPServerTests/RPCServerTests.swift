import Foundation
import Testing
import VPPClient
import VPPProto
import VPPServer
import VPPTestSupport
import VPPTesting
import VPPWire

@Suite("RPC server over real sockets")
struct RPCServerTests {
    private func status(_ error: any Error) -> RpcV1.StatusCode? {
        (error as? RPCError)?.code
    }

    private func expectStatus(_ code: RpcV1.StatusCode, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("expected \(code.name), the call succeeded")
        } catch {
            #expect(self.status(error) == code, "\(error)")
        }
    }

    @Test("a client authenticates, calls Ping and WhoAmI, and gets typed answers")
    func authenticateAndCall() async throws {
        let server = try await TestServer.start()
        let client = server.client()
        let welcome = try await client.connect()
        #expect(welcome.principalKind == "tenant")
        #expect(welcome.tenantId == "tenant-a")
        #expect(welcome.maxFrameBytes == 4 * 1024 * 1024)
        let pong = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("hello"))
        #expect(pong.payload == Array("hello".utf8))
        let whoami = try await client.call(VppV1.SystemService.WhoAmI.self, VppV1.WhoAmIRequest())
        #expect(whoami.keyId == "k-tenant")
        _ = try await client.ping()
        await client.close()
        await server.stop()
    }

    @Test("a wrong key and an empty key get UNAUTHENTICATED and the connection closes")
    func wrongKey() async throws {
        let server = try await TestServer.start()
        for key in ["nope", ""] {
            let raw = try await RawConnection.connect(port: server.port)
            try await raw.hello(apiKey: key)
            let frames = await raw.framesUntilClosed()
            guard case .goAway(let goAway) = frames.last?.kind else {
                Issue.record("expected a GoAway, got \(frames)")
                continue
            }
            #expect(goAway.status?.code == .unauthenticated)
        }
        await self.expectStatus(.unauthenticated) {
            _ = try await server.client(key: "nope").connect()
        }
        await server.stop()
    }

    @Test("a call before the Hello closes the connection with UNAUTHENTICATED")
    func callBeforeHello() async throws {
        let server = try await TestServer.start()
        let raw = try await RawConnection.connect(port: server.port)
        try await raw.send(RpcV1.ClientFrame(kind: .call(RpcV1.Call(callId: 1, method: VppV1.SystemService.Ping.path))))
        let frames = await raw.framesUntilClosed()
        guard case .goAway(let goAway) = frames.last?.kind else {
            Issue.record("expected a GoAway")
            return
        }
        #expect(goAway.status?.code == .unauthenticated)
        #expect(server.probe.counts.started == 0)
        await server.stop()
    }

    @Test("unknown and declared-but-unbuilt methods answer UNIMPLEMENTED; the connection stays usable")
    func unknownMethods() async throws {
        let server = try await TestServer.start()
        let client = server.client()
        do {
            _ = try await client.unaryBytes(path: "/vpp.v1.Nope/Nothing", request: [], timeout: .seconds(5))
            Issue.record("expected UNIMPLEMENTED")
        } catch let error as RPCError {
            #expect(error.code == .unimplemented)
            #expect(error.message.contains("Unknown method"))
        }
        do {
            _ = try await client.call(VppV1.TokenService.ListTokens.self, VppV1.ListTokensRequest())
            Issue.record("expected UNIMPLEMENTED")
        } catch let error as RPCError {
            #expect(error.code == .unimplemented)
            #expect(error.message.contains("not implemented"))
        }
        let pong = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("still here"))
        #expect(pong.payload == Array("still here".utf8))
        await client.close()
        await server.stop()
    }

    @Test("a request that does not decode gets INVALID_ARGUMENT for that call only")
    func undecodableRequest() async throws {
        let server = try await TestServer.start()
        let client = server.client()
        // Field 1 (bytes) announcing 100 bytes but carrying 2: not a PingRequest.
        await self.expectStatus(.invalidArgument) {
            _ = try await client.unaryBytes(
                path: VppV1.SystemService.Ping.path,
                request: [0x0A, 100, 1, 2],
                timeout: .seconds(5)
            )
        }
        let pong = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("ok"))
        #expect(pong.payload == Array("ok".utf8))
        await server.stop()
    }

    @Test("handler errors: RPCErrors keep their status, unexpected errors become INTERNAL without internals")
    func handlerErrors() async throws {
        let server = try await TestServer.start()
        let client = server.client()
        await self.expectStatus(.notFound) {
            _ = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("bad"))
        }
        do {
            _ = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("fail"))
            Issue.record("expected INTERNAL")
        } catch let error as RPCError {
            #expect(error.code == .internal)
            #expect(!error.message.contains("Unexpected"))
        }
        await server.stop()
    }

    @Test("operator methods refuse tenant keys and tenant methods refuse operator keys")
    func authorization() async throws {
        let server = try await TestServer.start()
        await self.expectStatus(.permissionDenied) {
            _ = try await server.client().call(
                VppV1.OperatorService.GetMigrationStatus.self,
                VppV1.GetMigrationStatusRequest()
            )
        }
        _ = try await server.client(key: TestServer.operatorKey).call(
            VppV1.OperatorService.GetMigrationStatus.self,
            VppV1.GetMigrationStatusRequest()
        )
        let watch = VppV1.WatchSyncJobRequest(jobId: "1")
        await self.expectStatus(.permissionDenied) {
            for try await _ in server.client(key: TestServer.operatorKey).stream(
                VppV1.SyncService.WatchSyncJob.self,
                watch
            ) {}
        }
        await server.stop()
    }

    @Test("many calls in flight on one connection are answered out of order, each with its own answer")
    func manyCallsOutOfOrder() async throws {
        let server = try await TestServer.start()
        let client = server.client()
        try await client.connect()
        let answers = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for index in 0..<100 {
                group.addTask {
                    // Later calls sleep less, so they finish first.
                    let request = VppV1.PingRequest("sleep:\((100 - index) % 25)")
                    let response = try await client.call(VppV1.SystemService.Ping.self, request)
                    return (index, response.payload)
                }
            }
            var answers: [Int: [UInt8]] = [:]
            for try await (index, payload) in group { answers[index] = payload }
            return answers
        }
        #expect(answers.count == 100)
        for (index, payload) in answers {
            #expect(payload == Array("sleep:\((100 - index) % 25)".utf8))
        }
        await server.stop()
    }

    @Test("calls beyond the in-flight limit get RESOURCE_EXHAUSTED; the others succeed")
    func inFlightLimit() async throws {
        let server = try await TestServer.start { $0.maxCallsInFlight = 4 }
        let client = server.client()
        try await client.connect()
        let results = await withTaskGroup(of: RpcV1.StatusCode.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    do {
                        _ = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("sleep:300"))
                        return .ok
                    } catch {
                        return (error as? RPCError)?.code ?? .unknown
                    }
                }
            }
            var results: [RpcV1.StatusCode] = []
            for await code in group { results.append(code) }
            return results
        }
        #expect(results.filter { $0 == .ok }.count == 4)
        #expect(results.filter { $0 == .resourceExhausted }.count == 6)
        await server.stop()
    }

    @Test("a deadline that passes answers DEADLINE_EXCEEDED and cancels the handler's work")
    func deadline() async throws {
        let server = try await TestServer.start()
        let client = server.client()
        await self.expectStatus(.deadlineExceeded) {
            _ = try await client.call(
                VppV1.SystemService.Ping.self,
                VppV1.PingRequest("sleep:10000"),
                timeout: .milliseconds(100)
            )
        }
        #expect(await eventually { server.probe.counts.cancelled == 1 })
        #expect(server.probe.counts.finished == 0)
        await server.stop()
    }

    @Test("the server caps deadlines at its maximum call duration")
    func maxCallDuration() async throws {
        let server = try await TestServer.start { $0.maxCallDuration = .milliseconds(100) }
        await self.expectStatus(.deadlineExceeded) {
            _ = try await server.client().call(
                VppV1.SystemService.Ping.self,
                VppV1.PingRequest("sleep:10000"),
                timeout: .seconds(60)
            )
        }
        await server.stop()
    }

    @Test("cancelling the calling task cancels the call on the server")
    func cancellation() async throws {
        let server = try await TestServer.start()
        let client = server.client()
        try await client.connect()
        let task = Task {
            try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("sleep:10000"))
        }
        #expect(await eventually { server.probe.counts.started == 1 })
        task.cancel()
        do {
            _ = try await task.value
            Issue.record("expected a cancellation")
        } catch {
            #expect(self.status(error) == .cancelled)
        }
        #expect(await eventually { server.probe.counts.cancelled == 1 })
        // The connection is still good.
        _ = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("after"))
        await server.stop()
    }

    @Test("a server stream delivers every message in order, then the final status")
    func serverStream() async throws {
        let server = try await TestServer.start()
        let request = VppV1.WatchSyncJobRequest(jobId: "50")
        var seen: [UInt64] = []
        for try await job in server.client().stream(VppV1.SyncService.WatchSyncJob.self, request) {
            seen.append(job.itemsDone)
        }
        #expect(seen == Array(0..<50))
        await server.stop()
    }

    @Test("cancelling a server stream stops the handler")
    func cancelStream() async throws {
        let server = try await TestServer.start()
        let request = VppV1.WatchSyncJobRequest(jobId: "forever")
        let client = server.client()
        var received = 0
        for try await _ in client.stream(VppV1.SyncService.WatchSyncJob.self, request) {
            received += 1
            if received == 5 { break }
        }
        #expect(await eventually { server.probe.counts.cancelled == 1 })
        await server.stop()
    }

    @Test("a key revoked while the connection is open fails the next call and closes the connection")
    func revokedKeyOnOpenConnection() async throws {
        let server = try await TestServer.start()
        let client = server.client(reconnect: false)
        _ = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("before"))
        server.authenticator.revoke(keyID: TestServer.tenantPrincipal.keyID)
        await self.expectStatus(.unauthenticated) {
            _ = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("after"))
        }
        await self.expectStatus(.unavailable) {
            _ = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("closed"))
        }
        await server.stop()
    }

    @Test("graceful shutdown: calls in flight finish, new calls are refused, connections close")
    func gracefulShutdown() async throws {
        let server = try await TestServer.start()
        let client = server.client(reconnect: false)
        try await client.connect()
        let slow = Task {
            try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("sleep:500"))
        }
        #expect(await eventually { server.probe.counts.started == 1 })
        let port = server.port
        #expect(!server.server.isShuttingDown)
        let shutdown = Task { await server.server.shutdown(gracePeriod: .seconds(10)) }
        // While the call drains, the server says it is shutting down (vppd's /readyz answers 503 then).
        #expect(await eventually { server.server.isShuttingDown })
        let answer = try await slow.value
        #expect(answer.payload == Array("sleep:500".utf8))
        await shutdown.value
        await self.expectStatus(.unavailable) {
            _ = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("late"))
        }
        #expect(server.server.metrics.openConnectionCount == 0)
        // The port no longer accepts.
        await self.expectStatus(.unavailable) {
            _ = try await VPPClient(ClientConfiguration(port: port, apiKey: TestServer.tenantKey)).connect()
        }
    }

    @Test("shutdown cancels calls still running when the grace period ends")
    func shutdownGraceExpires() async throws {
        let server = try await TestServer.start()
        let client = server.client(reconnect: false)
        let slow = Task {
            try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("sleep:60000"))
        }
        #expect(await eventually { server.probe.counts.started == 1 })
        await server.server.shutdown(gracePeriod: .milliseconds(200))
        await #expect(throws: RPCError.self) { try await slow.value }
        #expect(await eventually { server.probe.counts.cancelled == 1 })
    }

    @Test("the client reconnects by itself after the server closed its connection")
    func reconnect() async throws {
        // Long enough that a loaded machine (the whole suite at once) gets the new connection's call in before the
        // idle timeout closes that one too.
        let server = try await TestServer.start { $0.idleTimeout = .seconds(1) }
        let client = server.client()
        _ = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("one"))
        #expect(await eventually { server.server.metrics.openConnectionCount == 0 })
        let pong = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("two"))
        #expect(pong.payload == Array("two".utf8))
        await server.stop()
    }
}
