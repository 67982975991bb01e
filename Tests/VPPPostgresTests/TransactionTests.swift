import Foundation
import Testing
import VPPPostgres

@Suite("Transactions")
struct TransactionTests {
    struct Abort: Error {}

    @Test func committedWorkIsVisibleAfterTheBodyReturns() async throws {
        try await withTestPool { pool in
            try await pool.simpleQuery("CREATE TABLE t (n int)")
            let result = try await pool.transaction { tx in
                try await tx.query("INSERT INTO t VALUES (\(Int32(1))), (\(Int32(2)))")
                return "done"
            }
            #expect(result == "done")
            #expect(try await pool.query("SELECT count(*) FROM t").single().decode(Int.self, at: 0) == 2)
        }
    }

    @Test func aThrownErrorRollsEverythingBack() async throws {
        try await withTestPool(poolSize: 1) { pool in
            try await pool.simpleQuery("CREATE TABLE t (n int)")
            await #expect(throws: Abort.self) {
                try await pool.transaction { tx in
                    try await tx.query("INSERT INTO t VALUES (\(Int32(1)))")
                    throw Abort()
                }
            }
            #expect(try await pool.query("SELECT count(*) FROM t").single().decode(Int.self, at: 0) == 0)
        }
    }

    @Test func aSwallowedStatementErrorMakesCommitFail() async throws {
        try await withTestPool { pool in
            try await pool.simpleQuery("CREATE TABLE t (n int)")
            let error = await #expect(throws: PostgresError.self) {
                try await pool.transaction { tx in
                    try await tx.query("INSERT INTO t VALUES (\(Int32(1)))")
                    _ = try? await tx.query("SELECT * FROM nowhere")
                }
            }
            #expect(error?.sqlState == "25P02")
            #expect(try await pool.query("SELECT count(*) FROM t").single().decode(Int.self, at: 0) == 0)
        }
    }

    @Test func conflictingSerializableTransactionsBothSucceedThroughRetries() async throws {
        try await withTestPool(poolSize: 2) { pool in
            try await pool.simpleQuery(
                "CREATE TABLE doctors (name text, on_call bool); INSERT INTO doctors VALUES ('a', true), ('b', true)"
            )
            // Both first attempts read before either writes: a classic write skew, which
            // SERIALIZABLE must refuse for one of them.
            let barrier = Barrier(parties: 2)
            let attempts = Counter()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for name in ["a", "b"] {
                    group.addTask {
                        try await pool.transaction(isolation: .serializable) { tx in
                            await attempts.increment()
                            let onCall = try await tx.query("SELECT count(*) FROM doctors WHERE on_call").single()
                            if tx.attempt == 1 { await barrier.arriveAndWait() }
                            if try onCall.decode(Int.self, at: 0) >= 2 {
                                try await tx.query("UPDATE doctors SET on_call = false WHERE name = \(name)")
                            } else {
                                try await tx.query("INSERT INTO doctors VALUES (\(name + "-was-needed"), false)")
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(await attempts.value >= 3)
            let onCall = try await pool.query("SELECT count(*) FROM doctors WHERE on_call").single()
            #expect(try onCall.decode(Int.self, at: 0) == 1)
            let notes = try await pool.query("SELECT count(*) FROM doctors WHERE name LIKE '%-was-needed'").single()
            #expect(try notes.decode(Int.self, at: 0) == 1)
        }
    }

    @Test func retriesStopAfterMaxAttempts() async throws {
        try await withTestPool { pool in
            let attempts = Counter()
            let error = await #expect(throws: PostgresError.self) {
                try await pool.transaction(maxAttempts: 3) { tx in
                    await attempts.increment()
                    // Raise a serialization failure on purpose.
                    try await tx.simpleQuery("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
                }
            }
            #expect(error?.kind == .serializationFailure)
            #expect(await attempts.value == 3)
        }
    }

    @Test func setLocalLastsOnlyUntilTheTransactionEnds() async throws {
        try await withTestPool(poolSize: 1) { pool in
            try await pool.simpleQuery(
                "CREATE SCHEMA \"tenant \"\"one\"\"\"; CREATE TABLE \"tenant \"\"one\"\"\".t (n int)"
            )
            let inside = try await pool.transaction { tx in
                try await tx.setLocal("search_path", try quoteIdentifier("tenant \"one\""))
                try await tx.query("INSERT INTO t VALUES (\(Int32(5)))")
                return try await tx.query("SELECT current_setting('search_path')").single().decode(String.self, at: 0)
            }
            #expect(inside == "\"tenant \"\"one\"\"\"")
            let after = try await pool.query("SELECT current_setting('search_path')").single()
            #expect(try after.decode(String.self, at: 0) == "\"$user\", public")
            let rows = try await pool.query("SELECT n FROM \(identifier: "tenant \"one\"").t").single()
            #expect(try rows.decode(Int.self, at: 0) == 5)
        }
    }

    @Test func aTransactionCanShortenTheStatementTimeout() async throws {
        try await withTestPool { pool in
            let error = await #expect(throws: PostgresError.self) {
                try await pool.transaction(statementTimeout: .milliseconds(100)) { tx in
                    try await tx.query("SELECT pg_sleep(\(30.0))")
                }
            }
            #expect(error?.kind == .queryCanceled)
            let timeout = try await pool.query("SELECT current_setting('statement_timeout')").single()
            #expect(try timeout.decode(String.self, at: 0) == "0")
        }
    }

    @Test func anOpenTransactionIsRolledBackWhenTheLeaseEnds() async throws {
        try await withTestPool(poolSize: 1) { pool in
            try await pool.simpleQuery("CREATE TABLE t (n int)")
            try await pool.withConnection { connection in
                try await connection.simpleQuery("BEGIN")
                try await connection.query("INSERT INTO t VALUES (\(Int32(1)))")
            }
            #expect(try await pool.query("SELECT count(*) FROM t").single().decode(Int.self, at: 0) == 0)
        }
    }
}

actor Counter {
    private(set) var value = 0
    func increment() { value += 1 }
}

/// Lets `parties` tasks continue only once all of them have arrived.
actor Barrier {
    private let parties: Int
    private var arrived = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(parties: Int) { self.parties = parties }

    func arriveAndWait() async {
        arrived += 1
        if arrived >= parties {
            waiting.forEach { $0.resume() }
            waiting = []
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }
}
