import Foundation
import Testing
import VPPPostgres
import VPPTesting

/// `PostgresPool.scopedRead`: the tenant reads' session scope (C3: a tenant's reads run as its role, in its schema).
/// Each test uses one connection, so every read and query lands on the connection the previous one left behind.
@Suite("Scoped reads")
struct ScopedReadTests {
    /// Two scopes, each a role that may read only its own schema's table `t`, which holds the scope's letter.
    struct Scopes {
        var a: (name: String, enter: [String], role: String)
        var b: (name: String, enter: [String], role: String)
    }

    private func withScopes(_ body: (PostgresPool, Scopes) async throws -> Void) async throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        try await withTestPool(poolSize: 1) { pool in
            var made: [(name: String, enter: [String], role: String)] = []
            for letter in ["a", "b"] {
                let role = "scope_\(letter)_\(suffix)"
                let schema = "s_\(letter)"
                try await pool.simpleQuery(
                    """
                    CREATE ROLE \(role) NOLOGIN;
                    CREATE SCHEMA \(schema);
                    CREATE TABLE \(schema).t (v text);
                    INSERT INTO \(schema).t VALUES ('\(letter)');
                    GRANT USAGE ON SCHEMA \(schema) TO \(role);
                    GRANT SELECT ON \(schema).t TO \(role);
                    """
                )
                made.append((schema, ["SET ROLE \(role)", "SET search_path TO \(schema)"], role))
            }
            do {
                try await body(pool, Scopes(a: made[0], b: made[1]))
            } catch {
                _ = try? await pool.simpleQuery(
                    "DROP OWNED BY \(made[0].role), \(made[1].role); DROP ROLE \(made[0].role), \(made[1].role)"
                )
                throw error
            }
            try await pool.simpleQuery(
                "DROP OWNED BY \(made[0].role), \(made[1].role); DROP ROLE \(made[0].role), \(made[1].role)"
            )
        }
    }

    private static let read: PostgresQuery = "SELECT v, current_user::text FROM t"

    @Test("a read in the scope the connection already has sends no scope statements and still runs as the scope's role")
    func repeatedReadsKeepTheScope() async throws {
        try await withScopes { pool, scopes in
            let before = pool.scopeEntryCount
            for _ in 0..<3 {
                let row = try await pool.scopedRead(scope: scopes.a.name, enter: scopes.a.enter, Self.read).single()
                #expect(try row.decode(String.self, at: 0) == "a")
                #expect(try row.decode(String.self, at: 1) == scopes.a.role)
            }
            #expect(pool.scopeEntryCount - before == 1, "only the first read entered the scope")
            // The kept scope is the role, not only the search path: the other scope's table stays out of reach.
            let error = await #expect(throws: PostgresError.self) {
                try await pool.scopedRead(scope: scopes.a.name, enter: scopes.a.enter, "SELECT v FROM s_b.t")
            }
            #expect(error?.sqlState == "42501", "permission denied")
        }
    }

    @Test("a scoped read whose enter sets no search path runs with an empty one, so unqualified names resolve nowhere")
    func theSearchPathIsEmptyUnlessEnterSetsOne() async throws {
        try await withScopes { pool, scopes in
            let roleOnly = ["SET ROLE \(scopes.a.role)"]
            let path = try await pool.scopedRead(
                scope: "a-role-only",
                enter: roleOnly,
                "SELECT current_setting('search_path')"
            )
            #expect(try path.single().decode(String.self, at: 0) == "\"\"")
            let error = await #expect(throws: PostgresError.self) {
                try await pool.scopedRead(scope: "a-role-only", enter: roleOnly, "SELECT v FROM t")
            }
            #expect(error?.sqlState == "42P01", "undefined table")
            let qualified = try await pool.scopedRead(
                scope: "a-role-only",
                enter: roleOnly,
                "SELECT v FROM \(identifier: scopes.a.name).t"
            )
            #expect(try qualified.single().decode(String.self, at: 0) == "a")
        }
    }

    @Test("a read in another scope switches the connection's role and search path")
    func anotherScopeSwitches() async throws {
        try await withScopes { pool, scopes in
            _ = try await pool.scopedRead(scope: scopes.a.name, enter: scopes.a.enter, Self.read)
            let row = try await pool.scopedRead(scope: scopes.b.name, enter: scopes.b.enter, Self.read).single()
            #expect(try row.decode(String.self, at: 0) == "b")
            #expect(try row.decode(String.self, at: 1) == scopes.b.role)
            let back = try await pool.scopedRead(scope: scopes.a.name, enter: scopes.a.enter, Self.read).single()
            #expect(try back.decode(String.self, at: 0) == "a")
        }
    }

    @Test("any other use of the connection after a scoped read runs as the login role with the default search path")
    func otherUsesAreReset() async throws {
        try await withScopes { pool, scopes in
            let login = try await pool.query("SELECT current_user::text, current_setting('search_path')").single()
            _ = try await pool.scopedRead(scope: scopes.a.name, enter: scopes.a.enter, Self.read)

            let plain = try await pool.query("SELECT current_user::text, current_setting('search_path')").single()
            #expect(try plain.decode(String.self, at: 0) == login.decode(String.self, at: 0))
            #expect(try plain.decode(String.self, at: 1) == login.decode(String.self, at: 1))

            _ = try await pool.scopedRead(scope: scopes.a.name, enter: scopes.a.enter, Self.read)
            let inTransaction = try await pool.transaction { transaction in
                try await transaction.query("SELECT current_user::text").single().decode(String.self, at: 0)
            }
            #expect(try inTransaction == login.decode(String.self, at: 0))

            _ = try await pool.scopedRead(scope: scopes.a.name, enter: scopes.a.enter, Self.read)
            let pipelined = try await pool.pipelinedRead(setup: [], "SELECT current_user::text").rows.single()
            #expect(try pipelined.decode(String.self, at: 0) == login.decode(String.self, at: 0))

            // After the reset, a read in the scope enters it again.
            let before = pool.scopeEntryCount
            let row = try await pool.scopedRead(scope: scopes.a.name, enter: scopes.a.enter, Self.read).single()
            #expect(try row.decode(String.self, at: 1) == scopes.a.role)
            #expect(pool.scopeEntryCount - before == 1)
        }
    }

    @Test("a scoped read that fails leaves the connection to be reset: the next uses run where they asked to")
    func aFailedReadLeavesNothingBehind() async throws {
        try await withScopes { pool, scopes in
            let login = try await pool.query("SELECT current_user::text").single().decode(String.self, at: 0)
            // Entering B, then failing: the role set in the same round trip is rolled back with it.
            await #expect(throws: PostgresError.self) {
                try await pool.scopedRead(scope: scopes.b.name, enter: scopes.b.enter, "SELECT 1 / 0 FROM t")
            }
            #expect(try await pool.query("SELECT current_user::text").single().decode(String.self, at: 0) == login)

            // Failing inside a scope the connection already had.
            _ = try await pool.scopedRead(scope: scopes.a.name, enter: scopes.a.enter, Self.read)
            await #expect(throws: PostgresError.self) {
                try await pool.scopedRead(scope: scopes.a.name, enter: scopes.a.enter, "SELECT 1 / 0 FROM t")
            }
            let before = pool.scopeEntryCount
            let row = try await pool.scopedRead(scope: scopes.b.name, enter: scopes.b.enter, Self.read).single()
            #expect(try row.decode(String.self, at: 0) == "b")
            #expect(pool.scopeEntryCount - before == 1)
            #expect(try await pool.query("SELECT current_user::text").single().decode(String.self, at: 0) == login)
        }
    }

    @Test(
        "many reads at once over two scopes, batched on one connection, each run in its own scope; one that fails fails alone"
    )
    func concurrentReadsInMixedScopes() async throws {
        try await withScopes { pool, scopes in
            let entriesBefore = pool.scopeEntryCount
            let batchesBefore = pool.scopedReadBatchCount
            // Every fifth read divides by zero; the others read their scope's letter and role.
            let outcomes = try await withThrowingTaskGroup(of: (Int, Result<[String], PostgresError>).self) { group in
                for index in 0..<200 {
                    let scope = index % 2 == 0 ? scopes.a : scopes.b
                    let query: PostgresQuery =
                        index % 5 == 4
                        ? "SELECT v, (1 / (\(index) - \(index)))::text FROM t"
                        : "SELECT v, current_user::text FROM t"
                    group.addTask {
                        do {
                            let row = try await pool.scopedRead(scope: scope.name, enter: scope.enter, query).single()
                            return (
                                index,
                                .success([try row.decode(String.self, at: 0), try row.decode(String.self, at: 1)])
                            )
                        } catch let error as PostgresError {
                            return (index, .failure(error))
                        }
                    }
                }
                return try await group.reduce(into: [Int: Result<[String], PostgresError>]()) { $0[$1.0] = $1.1 }
            }
            #expect(outcomes.count == 200)
            let batches = pool.scopedReadBatchCount - batchesBefore
            #expect(batches < 200, "reads waiting together went in one round trip")
            #expect(pool.scopeEntryCount - entriesBefore <= 2 * batches, "a batch enters each of its scopes once")
            for (index, outcome) in outcomes {
                let scope = index % 2 == 0 ? scopes.a : scopes.b
                switch outcome {
                case .success(let values):
                    #expect(index % 5 != 4, "read \(index) should have failed")
                    #expect(values == [index % 2 == 0 ? "a" : "b", scope.role], "read \(index)")
                case .failure(let error):
                    #expect(index % 5 == 4, "read \(index) failed: \(error)")
                    #expect(error.sqlState == "22012", "division by zero")
                }
            }
            // The connection is usable afterwards, as the login role.
            let login = try await pool.query("SELECT current_user::text = session_user::text").single()
            #expect(try login.decode(Bool.self, at: 0))
        }
    }

    @Test("a read that cannot be sent (a NUL in a parameter) fails alone, without touching the connection")
    func anUnsendableReadFailsAlone() async throws {
        try await withScopes { pool, scopes in
            let error = await #expect(throws: PostgresError.self) {
                try await pool.scopedRead(
                    scope: scopes.a.name,
                    enter: scopes.a.enter,
                    "SELECT v FROM t WHERE v = \("a\u{0}b")"
                )
            }
            #expect(error?.kind == .invalidArgument)
            let row = try await pool.scopedRead(scope: scopes.a.name, enter: scopes.a.enter, Self.read).single()
            #expect(try row.decode(String.self, at: 0) == "a")
        }
    }

    @Test("reads queued when the pool shuts down fail with shutdown, and later ones are refused")
    func readsAfterShutdownAreRefused() async throws {
        let configuration = try await TestPostgres.makeDatabase(prefix: "scoped_shutdown", poolSize: 1)
        let pool = PostgresPool(configuration: configuration)
        _ = try await pool.scopedRead(scope: "plain", enter: [], "SELECT 1")
        await pool.shutdown()
        let error = await #expect(throws: PostgresError.self) {
            try await pool.scopedRead(scope: "plain", enter: [], "SELECT 1")
        }
        #expect(error?.kind == .shutdown)
    }

    @Test("a statement is prepared per scope, and past the limit the least recently used are deallocated")
    func statementsPerScopeStayBounded() async throws {
        try await withTestPool(poolSize: 1) { pool in
            let scopes = 2_300
            try await withThrowingTaskGroup(of: Void.self) { group in
                for scope in 0..<scopes {
                    group.addTask {
                        let row = try await pool.scopedRead(scope: "scope-\(scope)", enter: [], "SELECT \(scope)")
                            .single()
                        #expect(try row.decode(Int.self, at: 0) == scope)
                    }
                }
                try await group.waitForAll()
            }
            // The same connection (pool size 1) holds the statements.
            let prepared = try await pool.query("SELECT count(*) FROM pg_prepared_statements").single().decode(
                Int.self,
                at: 0
            )
            #expect(prepared > 0)
            #expect(prepared <= 2_048, "\(prepared) statements prepared")
            // An evicted scope's statement is prepared again.
            let again = try await pool.scopedRead(scope: "scope-0", enter: [], "SELECT 0").single()
            #expect(try again.decode(Int.self, at: 0) == 0)
        }
    }
}
