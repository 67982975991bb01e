import Foundation
import Testing
import VPPPostgres
import VPPProto
import VPPTesting

/// Issue 16: a descriptor limit below --max-connections caps the connections, says so, and refuses the rest clearly.
@Suite("vppd and the file-descriptor limit")
struct DescriptorLimitTests {
    @Test(
        "under ulimit -n 400, vppd logs the cap and answers the connection past it with CONNECTION_LIMIT, not silence"
    )
    func lowDescriptorLimit() async throws {
        let database = try await TestPostgres.makeDatabase(prefix: "fd_limit")
        let operatorKey = "op-" + (0..<4).map { _ in UUID().uuidString }.joined()
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VPP_") }
        environment["VPP_DATABASE_URL"] = MultiServerTests.url(database)
        environment["VPP_TOKEN_KEY"] = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        environment["VPP_BOOTSTRAP_OPERATOR_KEY"] = operatorKey
        environment["VPP_DB_POOL_SIZE"] = "4"
        environment["VPP_SYNC_WORKERS"] = "0"
        environment["VPP_LOG_LEVEL"] = "info"
        let (port, metricsPort) = (try await DaemonProcess.freePort(), try await DaemonProcess.freePort())
        environment["VPP_PORT"] = "\(port)"
        environment["VPP_METRICS_PORT"] = "\(metricsPort)"
        let vppd = try DaemonProcess.product("vppd")
        // Soft and hard limit 400: 400 - (2 x 4 + 256) = 136 connections.
        let process = try DaemonProcess.start(
            "/bin/bash",
            ["-c", "ulimit -n 400 && exec \"$0\" serve", vppd],
            environment: environment
        )
        defer { if process.process.isRunning { process.process.terminate() } }
        try await process.waitUntilReady(metricsPort: metricsPort)
        #expect(process.log.contains("connections_allowed=136"), "\(process.log.suffix(2000))")

        var open: [RawConnection] = []
        for _ in 0..<136 {
            let raw = try await RawConnection.connect(port: port)
            try await raw.hello(apiKey: operatorKey)
            guard case .frame(let frame) = await raw.next(), case .welcome = frame.kind else {
                Issue.record("connection \(open.count + 1) was not welcomed")
                break
            }
            open.append(raw)
        }
        #expect(open.count == 136)
        // The next one is told why, at once.
        let refused = try await RawConnection.connect(port: port)
        let frames = await refused.framesUntilClosed()
        guard case .goAway(let goAway) = frames.last?.kind else {
            Issue.record("expected a GoAway, got \(frames)")
            return
        }
        #expect(goAway.status?.details.first?.reason == "CONNECTION_LIMIT")
        for raw in open { await raw.close() }
        #expect(await process.stop() == 0)
    }
}
