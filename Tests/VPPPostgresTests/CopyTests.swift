import Foundation
import Testing
import VPPPostgres

@Suite("COPY FROM STDIN")
struct CopyTests {
    @Test func oneHundredThousandRowsWithTrickyStringsLandExactly() async throws {
        try await withTestPool { pool in
            try await pool.simpleQuery(
                "CREATE TABLE \"Bulk \"\"Rows\"\"\" (id bigint PRIMARY KEY, \"the name\" text, tags text[], data bytea, at timestamptz)"
            )
            let tricky = hostileStrings.filter { $0.utf8.count < 1000 }
            func name(_ id: Int) -> String? { id % 17 == 0 ? nil : tricky[id % tricky.count] + "#\(id)" }
            let start = Date(timeIntervalSince1970: 1_700_000_000)
            let rowCount = 100_000
            var rows: [[(any PostgresEncodable)?]] = []
            rows.reserveCapacity(rowCount)
            for id in 0..<rowCount {
                let tags: [String]? = id % 5 == 0 ? [tricky[id % tricky.count], "\\N", "x\ty"] : nil
                let data: [UInt8]? = id % 3 == 0 ? [UInt8(id & 0xff), 0, 92, 9, 10] : nil
                let at = start.addingTimeInterval(Double(id) / 1000)
                rows.append([id, name(id), tags, data, at])
            }
            let copied = try await pool.copyIn(
                table: "Bulk \"Rows\"",
                columns: ["id", "the name", "tags", "data", "at"],
                rows: rows
            )
            #expect(copied == rowCount)

            let summary = try await pool.query(
                """
                SELECT count(*), sum(id)::bigint, count("the name"), sum(length("the name")), count(tags), count(data),
                       sum(octet_length(data))
                FROM \(identifier: "Bulk \"Rows\"")
                """
            ).single()
            let names = (0..<rowCount).compactMap(name)
            #expect(try summary.decode(Int.self, at: 0) == rowCount)
            #expect(try summary.decode(Int.self, at: 1) == (0..<rowCount).reduce(0, +))
            #expect(try summary.decode(Int.self, at: 2) == names.count)
            #expect(try summary.decode(Int.self, at: 3) == names.reduce(0) { $0 + $1.unicodeScalars.count })
            #expect(try summary.decode(Int.self, at: 4) == rowCount / 5)
            #expect(try summary.decode(Int.self, at: 5) == (rowCount + 2) / 3)
            #expect(try summary.decode(Int.self, at: 6) == (rowCount + 2) / 3 * 5)

            // Every value reads back exactly.
            let all = try await pool.query(
                "SELECT id, \"the name\", tags, data, at FROM \"Bulk \"\"Rows\"\"\" ORDER BY id"
            )
            func micros(_ date: Date?) -> Int64? { date.map { Int64(($0.timeIntervalSince1970 * 1e6).rounded()) } }
            var mismatches = [0, 0, 0, 0, 0]
            for (index, row) in all.enumerated() {
                let expected = rows[index]
                if try row.decode(Int.self, at: 0) != index { mismatches[0] += 1 }
                if try row.decode(String?.self, at: 1) != name(index) { mismatches[1] += 1 }
                if try row.decode([String]?.self, at: 2) != expected[2] as? [String] { mismatches[2] += 1 }
                if try row.decode([UInt8]?.self, at: 3) != expected[3] as? [UInt8] { mismatches[3] += 1 }
                if try micros(row.decode(Date.self, at: 4)) != micros(expected[4] as? Date) { mismatches[4] += 1 }
            }
            #expect(all.count == rowCount)
            #expect(mismatches == [0, 0, 0, 0, 0], "mismatches per column")
        }
    }

    @Test func aNulByteAbortsTheCopyAndLeavesNoRows() async throws {
        try await withTestPool { pool in
            try await pool.simpleQuery("CREATE TABLE t (id bigint, s text)")
            let error = await #expect(throws: PostgresError.self) {
                try await pool.copyIn(table: "t", columns: ["id", "s"], rows: [[1, "fine"], [2, "bad\u{0}"]])
            }
            #expect(error?.kind == .invalidArgument)
            #expect(try await pool.query("SELECT count(*) FROM t").single().decode(Int.self, at: 0) == 0)
            // The connection is usable afterwards.
            #expect(try await pool.copyIn(table: "t", columns: ["id", "s"], rows: [[3, nil]]) == 1)
        }
    }

    @Test func copyRunsInsideATransactionAndRollsBackWithIt() async throws {
        try await withTestPool { pool in
            try await pool.simpleQuery("CREATE SCHEMA s; CREATE TABLE s.t (id bigint)")
            struct Abort: Error {}
            await #expect(throws: Abort.self) {
                try await pool.transaction { tx in
                    try await tx.copyIn(schema: "s", table: "t", columns: ["id"], rows: [[1], [2]])
                    throw Abort()
                }
            }
            #expect(try await pool.query("SELECT count(*) FROM s.t").single().decode(Int.self, at: 0) == 0)
        }
    }

    @Test func badIdentifiersAreRejectedBeforeAnythingIsSent() async throws {
        try await withTestPool { pool in
            await #expect(throws: PostgresError.self) { try await pool.copyIn(table: "", columns: ["a"], rows: []) }
            await #expect(throws: PostgresError.self) {
                try await pool.copyIn(table: "t", columns: ["a\u{0}"], rows: [])
            }
            let missing = await #expect(throws: PostgresError.self) {
                try await pool.copyIn(table: "nowhere", columns: ["a"], rows: [[1]])
            }
            #expect(missing?.kind == .undefinedTable)
        }
    }
}
