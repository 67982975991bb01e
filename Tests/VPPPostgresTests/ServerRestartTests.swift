import Foundation
import Testing
import VPPPostgres
import VPPTesting

/// Stops and restarts a cluster of its own, so the shared test server is never disturbed.
@Suite("Recovery from a server restart")
struct ServerRestartTests {
    /// Polls until a query succeeds: reconnection backs off, so the first attempts may fail.
    func firstSuccess(_ pool: PostgresPool) async throws -> Int {
        var failures = 0
        while true {
            do {
                return try await pool.query("SELECT 1").single().decode(Int.self, at: 0)
            } catch let error as PostgresError where error.kind == .connectionFailure && failures < 200 {
                failures += 1
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    @Test func callsFailWhileTheServerIsDownAndSucceedAgainWithTheSamePool() async throws {
        let cluster = try await TestPostgres.makeDedicatedCluster()
        var configuration = cluster.configuration()
        configuration.poolSize = 2
        let pool = PostgresPool(configuration: configuration)
        try await pool.query("SELECT 1")

        try await cluster.stop()
        let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
        #expect(error?.kind == .connectionFailure)

        try await cluster.start()
        #expect(try await firstSuccess(pool) == 1)

        await pool.shutdown()
        try await cluster.stop()
    }

    @Test func idleConnectionsAreReplacedAfterARestart() async throws {
        let cluster = try await TestPostgres.makeDedicatedCluster()
        var configuration = cluster.configuration()
        configuration.poolSize = 3
        let pool = PostgresPool(configuration: configuration)
        // Open all three connections.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<3 { group.addTask { try await pool.query("SELECT pg_sleep(0.05)") } }
            try await group.waitForAll()
        }
        try await cluster.restart()
        #expect(try await firstSuccess(pool) == 1)
        // Every pooled connection works again.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 { group.addTask { _ = try await firstSuccess(pool) } }
            try await group.waitForAll()
        }
        await pool.shutdown()
        try await cluster.stop()
    }
}
