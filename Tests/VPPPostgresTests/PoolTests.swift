import Foundation
import Testing
import VPPPostgres
import VPPTesting

@Suite("Connection pool")
struct PoolTests {
    @Test("libpq tries the hosts of the list in order and takes the first that accepts read-write sessions (failover)")
    func connectsToTheFirstLiveHostOfAList() async throws {
        // A port nothing listens on first: libpq moves on to the real server, as it would after a failover.
        let deadPort = try await DaemonProcess.freePort()
        try await withTestPool(configure: { configuration in
            configuration.hosts = "127.0.0.1,\(configuration.host)"
            configuration.ports = "\(deadPort),\(configuration.port)"
            configuration.targetSessionAttributes = "read-write"
        }) { pool in
            let rows = try await pool.query("SELECT current_setting('transaction_read_only')")
            #expect(try rows.first?.decode(String.self, at: 0) == "off")
        }
    }

    @Test func manyMoreCallersThanConnectionsAllComplete() async throws {
        try await withTestPool(poolSize: 3) { pool in
            let results = try await withThrowingTaskGroup(of: Int.self) { group in
                for value in 0..<60 {
                    group.addTask {
                        try await pool.query("SELECT \(value) FROM pg_sleep(0.005)").single().decode(Int.self, at: 0)
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(results.sorted() == Array(0..<60))
            let sessions = try await pool.query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            ).single()
            #expect(try sessions.decode(Int.self, at: 0) <= 3)
        }
    }

    @Test func waitingLongerThanTheAcquireTimeoutFailsWithPoolTimeout() async throws {
        try await withTestPool(poolSize: 1, configure: { $0.poolAcquireTimeout = .milliseconds(100) }) { pool in
            try await pool.withConnection { held in
                let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
                #expect(error?.kind == .poolTimeout)
                let holderResult = try await held.query("SELECT 2").single().decode(Int.self, at: 0)
                #expect(holderResult == 2, "the holder is unaffected")
            }
            #expect(try await pool.query("SELECT 3").single().decode(Int.self, at: 0) == 3)
        }
    }

    @Test func aCancelledWaiterLeavesTheQueue() async throws {
        try await withTestPool(poolSize: 1) { pool in
            try await pool.withConnection { _ in
                let waiter = Task { try await pool.query("SELECT 1") }
                waiter.cancel()
                await #expect(throws: CancellationError.self) { try await waiter.value }
            }
            #expect(try await pool.query("SELECT 4").single().decode(Int.self, at: 0) == 4)
        }
    }

    @Test func anIdleConnectionKilledOnTheServerIsReplacedBeforeTheNextCall() async throws {
        try await withTestPool(poolSize: 1) { pool in
            let first = try await pool.query("SELECT pg_backend_pid()").single().decode(Int32.self, at: 0)
            try await withAdminPool { admin in try await terminateBackend(first, using: admin) }
            let second = try await pool.query("SELECT pg_backend_pid()").single().decode(Int32.self, at: 0)
            #expect(second != first)
        }
    }

    @Test func aConnectionKilledWhileLeasedFailsAsConnectionFailureAndIsReplaced() async throws {
        try await withTestPool(poolSize: 1) { pool in
            let killed = try await pool.withConnection { connection in
                try await withAdminPool { admin in try await terminateBackend(connection.backendPID, using: admin) }
                let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
                #expect(error?.kind == .connectionFailure)
                return connection.backendPID
            }
            let next = try await pool.query("SELECT pg_backend_pid()").single().decode(Int32.self, at: 0)
            #expect(next != killed)
        }
    }

    @Test func aHandleUsedAfterItsLeaseIsRefused() async throws {
        try await withTestPool { pool in
            let escaped = try await pool.withConnection { $0 }
            let error = await #expect(throws: PostgresError.self) { try await escaped.query("SELECT 1") }
            #expect(error?.kind == .invalidArgument)
        }
    }

    @Test func afterShutdownCallsFailWithShutdown() async throws {
        let configuration = try await TestPostgres.makeDatabase(prefix: "pool")
        let pool = PostgresPool(configuration: configuration)
        try await pool.query("SELECT 1")
        await pool.shutdown()
        let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
        #expect(error?.kind == .shutdown)
    }

    @Test func wrongCredentialsFailAsConnectionFailure() async throws {
        var configuration = try await TestPostgres.makeDatabase(prefix: "pool")
        configuration.database = "no_such_database"
        let pool = PostgresPool(configuration: configuration)
        let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
        #expect(error?.kind == .connectionFailure)
        await pool.shutdown()
    }
}
