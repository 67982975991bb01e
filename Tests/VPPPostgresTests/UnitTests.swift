import Foundation
import Testing

@testable import VPPPostgres

@Suite("Configuration, identifiers, literals and errors (no server)")
struct UnitTests {
    @Test("a NUL is found wherever it is, in native and in bridged strings; texts without one pass")
    func nulBytesAreFound() {
        let long = String(repeating: "SELECT x FROM t; ", count: 40)
        #expect(!long.containsNUL)
        #expect(!"".containsNUL)
        #expect((long + "\u{0}").containsNUL)
        #expect(("\u{0}" + long).containsNUL)
        #expect(("é" + "\u{0}" + "ü").containsNUL)
        let bridged = NSString(string: "abc\u{0}def") as String
        #expect(bridged.containsNUL)
        #expect(!(NSString(string: "abcdef") as String).containsNUL)
    }

    @Test func aURLParsesIntoEveryField() throws {
        let configuration = try PostgresConfiguration(
            url:
                "postgres://vpp%20user:p%40ss%3Aw%27rd@db.example:6543/vpp_main?sslmode=require&application_name=vppd&statement_timeout=1500&pool_size=7"
        )
        #expect(configuration.user == "vpp user")
        #expect(configuration.password == "p@ss:w'rd")
        #expect(configuration.host == "db.example")
        #expect(configuration.port == 6543)
        #expect(configuration.database == "vpp_main")
        #expect(configuration.sslMode == "require")
        #expect(configuration.applicationName == "vppd")
        #expect(configuration.statementTimeout == .milliseconds(1500))
        #expect(configuration.poolSize == 7)
        // The conninfo form quotes every value.
        #expect(configuration.conninfo.contains("password='p@ss:w\\'rd'"))
        #expect(configuration.connectionParameters.contains { $0 == ("user", "vpp user") })
    }

    @Test func aSocketDirectoryCanBeGivenAsTheHost() throws {
        let configuration = try PostgresConfiguration(url: "postgresql://me@%2Fvar%2Frun%2Fpostgresql/db")
        #expect(configuration.host == "/var/run/postgresql")
        #expect(configuration.password == nil)
    }

    @Test func severalHostsAndTargetSessionAttrsGoToLibpqForFailover() throws {
        let configuration = try PostgresConfiguration(
            url: "postgres://vpp@/vpp?host=db1.internal,db2.internal&port=5432,5433&target_session_attrs=read-write"
        )
        #expect(configuration.connectionParameters.contains { $0 == ("host", "db1.internal,db2.internal") })
        #expect(configuration.connectionParameters.contains { $0 == ("port", "5432,5433") })
        #expect(configuration.connectionParameters.contains { $0 == ("target_session_attrs", "read-write") })
    }

    @Test func invalidURLsAreRejectedWithoutEchoingThem() {
        for url in [
            "mysql://u@h/db", "postgres://h/db", "postgres://u:secret@h/", "postgres://u:secret@h/db?typo=1",
            "postgres://u:secret@h/db?port=5432,x", "postgres://u:secret@h/db?target_session_attrs=primary-ish",
        ] {
            let error = #expect(throws: PostgresError.self) { try PostgresConfiguration(url: url) }
            #expect(error?.kind == .invalidArgument)
            #expect(error?.description.contains("secret") == false)
        }
    }

    @Test func identifiersAreDoubleQuotedWithInnerQuotesDoubled() throws {
        #expect(try quoteIdentifier("tenant_1") == "\"tenant_1\"")
        #expect(try quoteIdentifier("we\"ird; DROP") == "\"we\"\"ird; DROP\"")
        #expect(try quoteIdentifier("Ünï") == "\"Ünï\"")
        #expect(throws: PostgresError.self) { try quoteIdentifier("") }
        #expect(throws: PostgresError.self) { try quoteIdentifier("a\u{0}b") }
    }

    @Test func arrayLiteralsEscapeAndParseBack() throws {
        let values: [String?] = ["a,b", "\"q\"", "{x}", "\\", "NULL", nil, ""]
        let literal = PostgresArrayLiteral.format(values)
        #expect(literal == #"{"a,b","\"q\"","{x}","\\","NULL",NULL,""}"#)
        #expect(try PostgresArrayLiteral.parse(literal[...]) == values)
        #expect(try PostgresArrayLiteral.parse("{}") == [])
        #expect(try PostgresArrayLiteral.parse("{1,2,NULL}") == ["1", "2", nil])
        #expect(throws: PostgresDecodingError.Reason.self) { try PostgresArrayLiteral.parse("{{1,2},{3,4}}") }
        #expect(throws: PostgresDecodingError.Reason.self) { try PostgresArrayLiteral.parse("{\"open}") }
    }

    @Test func timestampsFormatAndParseToTheMicrosecond() {
        let date = Date(timeIntervalSince1970: 1_709_210_707.123456)
        #expect(PostgresTimestamp.format(date) == "2024-02-29 12:45:07.123456+00")
        #expect(PostgresTimestamp.parse("2024-02-29 12:45:07.123456+00") == date)
        #expect(PostgresTimestamp.parse("2024-02-29 12:45:07+00") == Date(timeIntervalSince1970: 1_709_210_707))
        #expect(PostgresTimestamp.parse("2024-02-29 18:15:07.5+05:30") == Date(timeIntervalSince1970: 1_709_210_707.5))
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: -0.5)) == "1969-12-31 23:59:59.500000+00")
        #expect(PostgresTimestamp.parse("not a date") == nil)
        #expect(PostgresTimestamp.parse("infinity") == .distantFuture)
    }

    @Test func serverErrorsAreClassifiedBySQLState() {
        #expect(PostgresError.Kind(sqlState: "40001") == .serializationFailure)
        #expect(PostgresError.Kind(sqlState: "40P01") == .deadlock)
        #expect(PostgresError.Kind(sqlState: "23505") == .uniqueViolation)
        #expect(PostgresError.Kind(sqlState: "23503") == .foreignKeyViolation)
        #expect(PostgresError.Kind(sqlState: "23514") == .checkViolation)
        #expect(PostgresError.Kind(sqlState: "57014") == .queryCanceled)
        #expect(PostgresError.Kind(sqlState: "42P01") == .undefinedTable)
        #expect(PostgresError.Kind(sqlState: "08006") == .connectionFailure)
        #expect(PostgresError.Kind(sqlState: "57P01") == .connectionFailure)
        #expect(PostgresError.Kind(sqlState: "57P03") == .connectionFailure)
        #expect(PostgresError.Kind(sqlState: "42601") == .other)
    }

    @Test func echoedValuesAreRedactedFromServerErrors() {
        let unique = PostgresError.server(
            sqlState: "23505",
            severity: "ERROR",
            message: "duplicate key value violates unique constraint \"k\"",
            detail: "Key (email, tenant)=(secret@x.y, 42) already exists.",
            hint: nil,
            constraint: "k",
            schema: nil,
            table: nil,
            column: nil
        )
        #expect(unique.detail == "Key (email, tenant)=(…) already exists.")
        let input = PostgresError.server(
            sqlState: "22P02",
            severity: "ERROR",
            message: "invalid input syntax for type integer: \"secret\"",
            detail: nil,
            hint: nil,
            constraint: nil,
            schema: nil,
            table: nil,
            column: nil
        )
        #expect(input.message == "invalid input syntax for type integer: \"…\"")
        let check = PostgresError.server(
            sqlState: "23514",
            severity: "ERROR",
            message: "new row violates check constraint \"c\"",
            detail: "Failing row contains (1, secret).",
            hint: nil,
            constraint: "c",
            schema: nil,
            table: nil,
            column: nil
        )
        #expect(check.detail == "Failing row contains (…).")
    }
}

@Suite("Pool state machine")
struct PoolStateMachineTests {
    typealias Machine = PoolStateMachine<String, Int, String>

    @Test func slotsStartEmptySoConnectionsOpenLazily() {
        var machine = Machine(size: 2)
        guard case .use(nil) = machine.lease(1), case .use(nil) = machine.lease(2) else {
            Issue.record("expected two empty slots")
            return
        }
        guard case .wait = machine.lease(3) else {
            Issue.record("expected the third caller to wait")
            return
        }
        #expect(machine.leasedCount == 2)
    }

    @Test func openConnectionsAreReusedBeforeEmptySlots() {
        var machine = Machine(size: 2)
        _ = machine.lease(1)
        guard case .keep = machine.release("conn-a") else {
            Issue.record("expected keep")
            return
        }
        guard case .use("conn-a") = machine.lease(2) else {
            Issue.record("expected conn-a")
            return
        }
    }

    @Test("a lease takes the most recent open connection it prefers, else the most recent open one, else an empty slot")
    func preferredConnectionsAreLeasedFirst() {
        var machine = Machine(size: 4)
        for id in 1...3 { _ = machine.lease(id) }
        for connection in ["scope-a-1", "scope-b", "scope-a-2"] { _ = machine.release(connection) }
        guard case .use("scope-b") = machine.lease(4, prefers: { $0 == "scope-b" }) else {
            Issue.record("expected the preferred connection from the middle of the free list")
            return
        }
        guard case .use("scope-a-2") = machine.lease(5, prefers: { $0.hasPrefix("scope-a") }) else {
            Issue.record("expected the most recently released preferred connection")
            return
        }
        guard case .use("scope-a-1") = machine.lease(6, prefers: { $0 == "scope-c" }) else {
            Issue.record("expected an open connection when none is preferred")
            return
        }
        guard case .use(nil) = machine.lease(7, prefers: { $0 == "scope-c" }) else {
            Issue.record("expected the empty slot last")
            return
        }
    }

    @Test func waitersAreServedFirstComeFirstServed() {
        var machine = Machine(size: 1)
        _ = machine.lease(1)
        _ = machine.lease(2)
        _ = machine.lease(3)
        guard case .handOver("c", to: 2) = machine.release("c") else {
            Issue.record("expected waiter 2")
            return
        }
        guard case .handOver(nil, to: 3) = machine.release(nil) else {
            Issue.record("expected waiter 3")
            return
        }
        guard case .keep = machine.release("d") else {
            Issue.record("expected keep")
            return
        }
        #expect(machine.leasedCount == 0)
    }

    @Test func anAbandonedWaiterIsSkipped() {
        var machine = Machine(size: 1)
        _ = machine.lease(1)
        _ = machine.lease(2)
        _ = machine.lease(3)
        let abandoned = machine.abandon(2)
        let abandonedTwice = machine.abandon(2)
        #expect(abandoned)
        #expect(!abandonedTwice)
        guard case .handOver(_, to: 3) = machine.release("c") else {
            Issue.record("expected waiter 3")
            return
        }
    }

    @Test func shutdownFailsWaitersAndDrainsLeases() {
        var machine = Machine(size: 2)
        _ = machine.lease(1)
        _ = machine.release("idle")
        _ = machine.lease(2)
        _ = machine.lease(3)
        _ = machine.lease(4)
        let (waiters, idle, drained) = machine.shutDown()
        #expect(waiters == [4])
        #expect(idle.isEmpty)
        #expect(!drained)
        guard case .close("a", drained: false) = machine.release("a") else {
            Issue.record("expected close")
            return
        }
        guard case .close(nil, drained: true) = machine.release(nil) else {
            Issue.record("expected drain")
            return
        }
        guard case .fail = machine.lease(5) else {
            Issue.record("expected fail")
            return
        }
    }
}
