import NIOCore
import NIOPosix
import Testing
import VPPClient
import VPPProto
import VPPTestSupport
import VPPTesting
import VPPWire

@testable import VPPServer

/// Issue 16, point 7: closing many connections at once. Each connection used to hold two scheduled tasks (its
/// authentication timeout and its idle check), and NIO finds a cancelled task in its timer heap by a linear search,
/// so 10,000 connections closing together held the event loops for ~19 s. Now one sweeper per loop checks every
/// connection's deadlines: a connection is an entry in a dictionary, joined on open and left on close. The time it
/// takes is a figure (`vpp-load abuse --attack close-storm`, Benchmarks/abuse.sh), not a test.
@Suite("Many connections closing at once")
struct CloseStormTests {
    @Test(
        "400 authenticated connections are tracked by the loops' sweepers; closed at once, none is left and calls go on"
    )
    func closeStorm() async throws {
        let server = try await TestServer.start()
        let count = 400
        var connections: [RawConnection] = []
        for _ in 0..<count {
            let raw = try await RawConnection.connect(port: server.port)
            try await raw.hello(apiKey: TestServer.tenantKey)
            guard case .frame(let frame) = await raw.next(), case .welcome = frame.kind else {
                Issue.record("a connection was not welcomed")
                return
            }
            connections.append(raw)
        }
        #expect(try await server.server.sweptConnectionCount() == count)
        #expect(server.server.metrics.openConnectionCount == count)

        // All at once: every close is started before any is awaited.
        let closing = connections.map { $0.channel.close() }
        for future in closing { try? await future.get() }
        #expect(await eventually(timeout: .seconds(30)) { server.server.metrics.openConnectionCount == 0 })
        #expect(try await server.server.sweptConnectionCount() == 0)

        // The server goes on serving: a new connection authenticates and calls.
        let client = VPPClient(ClientConfiguration(host: "127.0.0.1", port: server.port, apiKey: TestServer.tenantKey))
        let request = VppV1.PingRequest(payload: Array("after the storm".utf8))
        let response = try await client.call(VppV1.SystemService.Ping.self, request)
        #expect(response.payload == request.payload)
        #expect(try await server.server.sweptConnectionCount() == 1)
        await client.close()
        await server.stop()
    }

    @Test("the sweeper checks each connection until it leaves, and leaves no timer on a loop with no connections")
    func sweeperLifecycle() async throws {
        // Only ever touched on `loop`.
        final class Counting: SweptConnection, @unchecked Sendable {
            var sweeps = 0
            func sweep(now: NIODeadline) { self.sweeps += 1 }
        }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let sweepers = ConnectionSweepers(authenticationTimeout: .milliseconds(40), idleTimeout: .seconds(300))
        #expect(sweepers.interval == .milliseconds(10))
        let a = Counting()
        let b = Counting()
        try await loop.submit {
            let sweeper = sweepers.sweeper(on: loop)
            sweeper.add(a)
            sweeper.add(b)
            #expect(sweeper.isScheduled)
        }.get()
        try await Task.sleep(for: .milliseconds(100))
        let aAtRemoval = try await loop.submit {
            sweepers.sweeper(on: loop).remove(a)
            #expect(sweepers.sweeper(on: loop).isScheduled, "b is still there")
            return a.sweeps
        }.get()
        #expect(aAtRemoval > 0, "a connection is swept while it is there")
        let bBefore = try await loop.submit { b.sweeps }.get()
        try await Task.sleep(for: .milliseconds(100))
        try await loop.submit {
            #expect(a.sweeps == aAtRemoval, "a connection that left is not swept again")
            #expect(b.sweeps > bBefore)
            let sweeper = sweepers.sweeper(on: loop)
            sweeper.remove(b)
            #expect(!sweeper.isScheduled, "no timer is left on a loop with no connections")
        }.get()
        #expect(try await sweepers.connectionCount() == 0)
    }
}
