import Foundation
import Testing
import VPPPostgres
import VPPTesting

/// Runs `body` with a pool on a fresh database of the shared test server, and shuts it down.
func withTestPool<Result>(
    prefix: String = #function,
    poolSize: Int = 4,
    configure: (inout PostgresConfiguration) -> Void = { _ in },
    _ body: (PostgresPool) async throws -> Result
) async throws -> Result {
    var configuration = try await TestPostgres.makeDatabase(prefix: prefix, poolSize: poolSize)
    configure(&configuration)
    let pool = PostgresPool(configuration: configuration)
    do {
        let result = try await body(pool)
        await pool.shutdown()
        return result
    } catch {
        await pool.shutdown()
        throw error
    }
}

/// A superuser pool on the shared server's maintenance database (to kill backends).
func withAdminPool<Result>(_ body: (PostgresPool) async throws -> Result) async throws -> Result {
    var configuration = try await TestPostgres.adminConfiguration()
    configuration.poolSize = 1
    let pool = PostgresPool(configuration: configuration)
    do {
        let result = try await body(pool)
        await pool.shutdown()
        return result
    } catch {
        await pool.shutdown()
        throw error
    }
}

/// Terminates a backend and waits until it is gone (PostgreSQL 14+ `pg_terminate_backend(pid, timeout)`).
func terminateBackend(_ pid: Int32, using pool: PostgresPool) async throws {
    let rows = try await pool.query("SELECT pg_terminate_backend(\(pid), 10000)")
    #expect(try rows.single().decode(Bool.self, at: 0))
}

/// Awaits `operation`, failing the test instead of hanging if it takes longer than `limit`.
/// The limit is a safety net against a hang, not a performance assertion.
func withSafetyTimeout<Value: Sendable>(
    _ limit: Duration = .seconds(30),
    _ operation: @escaping @Sendable () async throws -> Value
) async throws -> Value {
    try await withThrowingTaskGroup(of: Value?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        guard let first = try await group.next(), let value = first else {
            group.cancelAll()
            throw SafetyTimeout()
        }
        group.cancelAll()
        return value
    }
}

struct SafetyTimeout: Error {}

/// Strings that would break naive SQL or COPY handling.
let hostileStrings: [String] = [
    "",
    "plain",
    "it's",
    "\"double\" quoted",
    "semi;colon",
    "'); DROP TABLE items; --",
    "\"); DROP TABLE items; --",
    "$1 $2 ? :name",
    "back\\slash \\\\ \\N \\x41",
    "tab\tnew\nline\rcarriage",
    "NULL",
    "{a,b}",
    "Grüße, 世界, עברית, 🎉👩‍👩‍👧",
    "\u{7f}\u{1}\u{1f}",
    String(repeating: "long-é-", count: 150_000),
]
