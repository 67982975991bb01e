import Foundation
import Testing
import VPPPostgres

@Suite("Queries and values against a real server")
struct QueryTests {
    @Test func hostileStringsRoundTripAsBoundValuesAndExecuteNothing() async throws {
        try await withTestPool { pool in
            try await pool.simpleQuery("CREATE TABLE items (id bigint PRIMARY KEY, value text NOT NULL)")
            for (index, value) in hostileStrings.enumerated() {
                let inserted = try await pool.query("INSERT INTO items (id, value) VALUES (\(index), \(value))")
                #expect(inserted.affectedRows == 1)
            }
            let rows = try await pool.query("SELECT id, value FROM items ORDER BY id")
            #expect(rows.count == hostileStrings.count)
            for (index, row) in rows.enumerated() {
                #expect(try row.decode(Int.self, "id") == index)
                #expect(try row.decode(String.self, "value") == hostileStrings[index])
            }
            // Used as a value in a WHERE clause, too: it matches itself and nothing else.
            let matched = try await pool.query("SELECT count(*) FROM items WHERE value = \(hostileStrings[5])")
            #expect(try matched.single().decode(Int64.self, at: 0) == 1)
            let tables = try await pool.query("SELECT count(*) FROM pg_tables WHERE tablename = 'items'")
            #expect(try tables.single().decode(Int64.self, at: 0) == 1)
        }
    }

    @Test func interpolationTurnsValuesIntoPlaceholders() {
        let name = "'; DROP TABLE x; --"
        let query: PostgresQuery =
            "SELECT * FROM \(identifier: "my \"table\"") WHERE a = \(name) AND b = \(42) AND c = \(nil as Int?)"
        #expect(query.sql == "SELECT * FROM \"my \"\"table\"\"\" WHERE a = $1 AND b = $2 AND c = $3")
        #expect(
            query.binds == [
                PostgresBind(type: .unknownLiteral, text: name), PostgresBind(type: .int8, text: "42"),
                PostgresBind(type: .int8, text: nil),
            ]
        )
    }

    @Test func everySupportedTypeDecodesWithAndWithoutNull() async throws {
        try await withTestPool { pool in
            let id = UUID()
            let date = Date(timeIntervalSince1970: 1_700_000_000.123456)
            let bytes: [UInt8] = [0, 1, 2, 0x7f, 0x80, 0xfe, 0xff]
            let row = try await pool.query(
                """
                SELECT \("text")::text AS t, \(Int(-5)) AS i, \(Int64.max) AS i64, \(Int32.min) AS i32, \(true) AS b,
                       \(3.25) AS d, \(id) AS u, \(date) AS ts, \(bytes) AS bytes,
                       \(["a", "b"]) AS texts, \([Int64(1), -2]) AS ints, \([id]) AS uuids,
                       NULL::text AS nt, NULL::bigint AS ni, NULL::uuid AS nu, NULL::timestamptz AS nts,
                       NULL::bytea AS nb, NULL::text[] AS na
                """
            ).single()
            #expect(try row.decode(String.self, "t") == "text")
            #expect(try row.decode(Int.self, "i") == -5)
            #expect(try row.decode(Int64.self, "i64") == .max)
            #expect(try row.decode(Int32.self, "i32") == .min)
            #expect(try row.decode(Bool.self, "b") == true)
            #expect(try row.decode(Double.self, "d") == 3.25)
            #expect(try row.decode(UUID.self, "u") == id)
            #expect(try row.decode(Date.self, "ts") == date)
            #expect(try row.decode([UInt8].self, "bytes") == bytes)
            #expect(try row.decode([String].self, "texts") == ["a", "b"])
            #expect(try row.decode([Int64].self, "ints") == [1, -2])
            #expect(try row.decode([UUID].self, "uuids") == [id])
            #expect(try row.decode(String?.self, "nt") == nil)
            #expect(try row.decode(Int64?.self, "ni") == nil)
            #expect(try row.decode(UUID?.self, "nu") == nil)
            #expect(try row.decode(Date?.self, "nts") == nil)
            #expect(try row.decode([UInt8]?.self, "nb") == nil)
            #expect(try row.decode([String]?.self, "na") == nil)
            #expect(try row.decode(String?.self, "t") == "text")
        }
    }

    @Test func optionalNilBindsAsNull() async throws {
        try await withTestPool { pool in
            let missing: String? = nil
            let row = try await pool.query("SELECT \(missing)::text IS NULL, \(nil as Int64?) IS NULL").single()
            #expect(try row.decode(Bool.self, at: 0))
            #expect(try row.decode(Bool.self, at: 1))
        }
    }

    @Test func arrayElementsWithCommasQuotesBracesAndBackslashesRoundTrip() async throws {
        try await withTestPool { pool in
            let tricky = ["a,b", "\"quoted\"", "{braces}", "back\\slash", "NULL", "", " spaced ", "}{,\"\\", "🎉"]
            let row = try await pool.query(
                "SELECT \(tricky)::text[] AS a, array_length(\(tricky)::text[], 1) AS n, (\(tricky)::text[])[5] IS NULL AS fifth_is_null"
            ).single()
            #expect(try row.decode([String].self, "a") == tricky)
            #expect(try row.decode(Int.self, "n") == tricky.count)
            #expect(try row.decode(Bool.self, "fifth_is_null") == false)

            let server = try await pool.query("SELECT ARRAY['x,y', NULL, 'q\"r']::text[]").single()
            #expect(try server.decode([String?].self, at: 0) == ["x,y", nil, "q\"r"])
            #expect(throws: PostgresDecodingError.self) { try server.decode([String].self, at: 0) }
        }
    }

    @Test func datesKeepMicrosecondsAcrossErasAndZones() async throws {
        try await withTestPool { pool in
            let dates = [
                Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: -1.5),
                Date(timeIntervalSince1970: 1_709_210_707.000001), Date(timeIntervalSince1970: 4_102_444_800.999999),
                Date(timeIntervalSince1970: -62_135_596_800),  // 0001-01-01
            ]
            for date in dates {
                let row = try await pool.query(
                    "SELECT \(date)::timestamptz, extract(epoch FROM \(date)::timestamptz)::text"
                ).single()
                let decoded = try row.decode(Date.self, at: 0)
                #expect(abs(decoded.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000_001)
                let epoch = try #require(Double(try row.decode(String.self, at: 1)))
                #expect(abs(epoch - date.timeIntervalSince1970) < 0.000_001)
            }
            // A timestamptz written with another zone offset reads back as the same instant.
            let offset = try await pool.query("SELECT '2024-01-01 12:00:00+05:30'::timestamptz").single()
            #expect(try offset.decode(Date.self, at: 0) == Date(timeIntervalSince1970: 1_704_090_600))
        }
    }

    @Test func nullIntoNonOptionalAndWrongTypesAreClearErrors() async throws {
        try await withTestPool { pool in
            let row = try await pool.query("SELECT NULL::text AS missing, 'secret'::text AS word, 7 AS number").single()
            let null = #expect(throws: PostgresDecodingError.self) { try row.decode(String.self, "missing") }
            #expect(null?.reason == .unexpectedNull)
            #expect(null?.column == "missing")
            let mismatch = #expect(throws: PostgresDecodingError.self) { try row.decode(Int64.self, "word") }
            #expect(mismatch?.reason == .typeMismatch)
            #expect(mismatch?.description.contains("secret") == false)
            let wrongArray = #expect(throws: PostgresDecodingError.self) { try row.decode([String].self, "word") }
            #expect(wrongArray?.reason == .typeMismatch)
            let unknown = #expect(throws: PostgresDecodingError.self) { try row.decode(Int.self, "nope") }
            #expect(unknown?.reason == .noSuchColumn)
            #expect(throws: PostgresDecodingError.self) { try row.decode(Int.self, at: 9) }
            #expect(try row.decode(Int32.self, "number") == 7)
        }
    }

    @Test func affectedRowsAndRowCountsAreReported() async throws {
        try await withTestPool { pool in
            try await pool.simpleQuery("CREATE TABLE t (n int); CREATE INDEX ON t (n);")
            let inserted = try await pool.query("INSERT INTO t SELECT generate_series(1, \(10))")
            #expect(inserted.affectedRows == 10)
            #expect(inserted.isEmpty)
            let updated = try await pool.query("UPDATE t SET n = n + 100 WHERE n > \(7)")
            #expect(updated.affectedRows == 3)
            #expect(updated.commandTag == "UPDATE 3")
            let selected = try await pool.query("SELECT n FROM t WHERE n > \(100) ORDER BY n")
            #expect(selected.count == 3)
            #expect(selected.affectedRows == 3)
            #expect(try selected.map { try $0.decode(Int.self, at: 0) } == [108, 109, 110])
            let created = try await pool.simpleQuery("CREATE TABLE u (n int)")
            #expect(created.affectedRows == nil)
        }
    }

    @Test func theSameStatementIsPreparedOnceAndReused() async throws {
        try await withTestPool(poolSize: 1) { pool in
            for value in 0..<20 {
                let row = try await pool.query("SELECT \(value) + 1").single()
                #expect(try row.decode(Int.self, at: 0) == value + 1)
            }
            let prepared = try await pool.query(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT $1 + 1'"
            )
            #expect(try prepared.single().decode(Int64.self, at: 0) == 1)
        }
    }

    @Test func statementTimeoutIsReportedAsQueryCanceled() async throws {
        try await withTestPool(configure: { $0.statementTimeout = .milliseconds(200) }) { pool in
            let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT pg_sleep(\(30.0))") }
            #expect(error?.kind == .queryCanceled)
            #expect(error?.sqlState == "57014")
            let afterwards = try await pool.query("SELECT 1").single().decode(Int.self, at: 0)
            #expect(afterwards == 1, "the connection is usable after a timeout")
        }
    }

    @Test func uniqueViolationNamesTheConstraintAndHidesTheValue() async throws {
        try await withTestPool { pool in
            try await pool.simpleQuery("CREATE TABLE users (email text CONSTRAINT users_email_key UNIQUE)")
            try await pool.query("INSERT INTO users VALUES (\("secret@example.com"))")
            let error = await #expect(throws: PostgresError.self) {
                try await pool.query("INSERT INTO users VALUES (\("secret@example.com"))")
            }
            #expect(error?.kind == .uniqueViolation)
            #expect(error?.constraint == "users_email_key")
            #expect(error?.table == "users")
            #expect(error?.description.contains("secret") == false)
            #expect(error?.detail?.contains("(email)") == true)
        }
    }

    @Test func integrityAndDataErrorsAreClassifiedWithoutEchoingValues() async throws {
        try await withTestPool { pool in
            try await pool.simpleQuery(
                """
                CREATE TABLE parent (id int PRIMARY KEY);
                CREATE TABLE child (parent int REFERENCES parent, amount int CHECK (amount > 0), note text);
                """
            )
            let foreignKey = await #expect(throws: PostgresError.self) {
                try await pool.query("INSERT INTO child VALUES (\(Int32(99)), 1, \("hunter2"))")
            }
            #expect(foreignKey?.kind == .foreignKeyViolation)
            let check = await #expect(throws: PostgresError.self) {
                try await pool.query("INSERT INTO child VALUES (NULL, \(Int32(-1)), \("hunter2"))")
            }
            #expect(check?.kind == .checkViolation)
            #expect(check?.description.contains("hunter2") == false)
            let badInput = await #expect(throws: PostgresError.self) {
                try await pool.query("SELECT \("hunter2-not-a-number")::int")
            }
            #expect(badInput?.sqlState == "22P02")
            #expect(badInput?.description.contains("hunter2") == false)
            let missing = await #expect(throws: PostgresError.self) { try await pool.query("SELECT * FROM nowhere") }
            #expect(missing?.kind == .undefinedTable)
            let nul = await #expect(throws: PostgresError.self) { try await pool.query("SELECT \("a\u{0}b")") }
            #expect(nul?.kind == .invalidArgument)
        }
    }

    @Test func simpleQueryRunsMultiStatementScripts() async throws {
        try await withTestPool { pool in
            let last = try await pool.simpleQuery(
                """
                CREATE SCHEMA s;
                CREATE TABLE s.t (id int);
                INSERT INTO s.t VALUES (1), (2);
                SELECT count(*) FROM s.t;
                """
            )
            #expect(try last.single().decode(Int64.self, at: 0) == 2)
        }
    }
}
