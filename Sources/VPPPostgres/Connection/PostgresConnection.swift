import CLibPQ
import Foundation

/// One libpq connection. The only type that touches libpq (with `PostgresListener`'s use of it).
///
/// Every method blocks; callers run them on threads that exist for blocking work and use a
/// connection from one thread at a time (libpq's rule). The pool guarantees this by leasing a
/// connection to one caller at a time, which is why the type can be `@unchecked Sendable`.
final class PostgresConnection: @unchecked Sendable {
    private var conn: OpaquePointer?
    /// Prepared statements by SQL text and parameter types: `PQprepare` once, then `PQexecPrepared`.
    private var preparedStatements: [StatementKey: String] = [:]
    private var statementCounter = 0
    /// Prepared statements live as long as the session; past this many, the cache starts over.
    private static let preparedStatementLimit = 512

    private struct StatementKey: Hashable {
        var sql: String
        var types: [UInt32]
    }

    /// Statements of scoped reads, prepared once per scope (`executeScopedReads`): PostgreSQL plans a statement for
    /// the search path it was prepared under and plans it again whenever it runs under another, so a statement
    /// shared by many scopes would be planned again on almost every read.
    private var scopedStatements: [ScopedStatementKey: ScopedStatement] = [:]
    private var scopedStatementUses = 0
    /// Past this many scoped statements, the least recently used quarter is deallocated.
    static let scopedStatementLimit = 2048

    private struct ScopedStatementKey: Hashable {
        var scope: String
        var statement: StatementKey
    }

    private struct ScopedStatement {
        var name: String
        var lastUse: Int
    }

    /// The server process serving this session (for logs and `pg_terminate_backend` in tests).
    let backendPID: Int32

    /// The role and search path this session runs with outside transactions. A scoped read
    /// (`PostgresPool.scopedRead`) leaves them set for its scope, so the next read in the same scope on this
    /// connection is one statement; every other use of the connection resets them first. Written only by the
    /// connection's lessee; read by the pool under its lock while the connection is free.
    var sessionScope: SessionScope = .none

    enum SessionScope: Equatable {
        /// The login role and the default search path.
        case none
        /// Set for this scope by a scoped read that succeeded.
        case scoped(String)
        /// A scoped read failed part-way: whatever is set must be reset before the next use.
        case unknown
    }

    private init(conn: OpaquePointer) {
        self.conn = conn
        self.backendPID = PQbackendPID(conn)
        // Without this, libpq prints every NOTICE to stderr.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
    }

    deinit { close() }

    /// Opens a connection with `PQconnectdbParams`: keywords and values go to libpq as separate
    /// arrays, so no value is ever parsed as part of a connection string.
    static func connect(_ configuration: PostgresConfiguration) throws(PostgresError) -> PostgresConnection {
        let parameters = configuration.connectionParameters
        let keywords = parameters.map { strdup($0.keyword) }
        let values = parameters.map { strdup($0.value) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let keywordArray: [UnsafePointer<CChar>?] = keywords.map { UnsafePointer($0) } + [nil]
        let valueArray: [UnsafePointer<CChar>?] = values.map { UnsafePointer($0) } + [nil]
        guard let conn = PQconnectdbParams(keywordArray, valueArray, 0) else {
            throw .connectionFailure("libpq could not allocate a connection", sqlState: "08001")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = errorMessage(conn)
            PQfinish(conn)
            throw .connectionFailure(message, sqlState: "08001")
        }
        return PostgresConnection(conn: conn)
    }

    /// Closes the connection; later calls fail with `connectionFailure`.
    func close() {
        if let conn {
            PQfinish(conn)
            self.conn = nil
        }
    }

    var isClosed: Bool { conn == nil }

    /// Whether the connection is known to be unusable (closed, or libpq saw it break).
    var isBroken: Bool {
        guard let conn else { return true }
        return PQstatus(conn) == CONNECTION_BAD
    }

    /// Checks an idle connection before it is leased: if the server closed it (restart,
    /// `pg_terminate_backend`, idle timeout), the socket is readable, and reading finds the end.
    /// Costs one `poll` with a zero timeout when the connection is fine.
    func checkIdleConnection() -> Bool {
        guard let conn, PQstatus(conn) == CONNECTION_OK else { return false }
        // A terminated backend sends a FATAL message and then closes the socket; libpq reads
        // the message in one call and notices the end of the stream only in the next, so read
        // until nothing more is waiting.
        for _ in 0..<8 {
            var descriptor = pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 0) > 0 else { break }
            // Anything arriving on an idle session is a server-side message (a FATAL before
            // closing, or a stray notification); consuming it updates the status.
            if PQconsumeInput(conn) == 0 { return false }
            while let notification = PQnotifies(conn) { PQfreemem(notification) }
            if PQstatus(conn) != CONNECTION_OK { return false }
        }
        return PQstatus(conn) == CONNECTION_OK
    }

    enum TransactionStatus { case idle, active, inTransaction, failedTransaction, unknown }

    var transactionStatus: TransactionStatus {
        guard let conn else { return .unknown }
        switch PQtransactionStatus(conn) {
        case PQTRANS_IDLE: return .idle
        case PQTRANS_ACTIVE: return .active
        case PQTRANS_INTRANS: return .inTransaction
        case PQTRANS_INERROR: return .failedTransaction
        default: return .unknown
        }
    }

    // MARK: Queries

    /// Runs one statement with bound parameters as a prepared statement (cached per SQL text).
    func execute(_ query: PostgresQuery) throws(PostgresError) -> PostgresRows {
        if let buildError = query.buildError { throw buildError }
        let conn = try liveConnection()
        let types = query.binds.map(\.type.oid)
        let key = StatementKey(sql: query.sql, types: types)
        let name: String
        if let cached = preparedStatements[key] {
            name = cached
        } else {
            name = try prepare(query.sql, types: types, conn: conn)
            preparedStatements[key] = name
        }
        let result = try withParameterValues(query.binds) { values in
            PQexecPrepared(conn, name, Int32(values.count), values, nil, nil, 0)
        }
        do {
            return try consume(result)
        } catch {
            // A cached plan can become unusable (a table's columns changed under it): forget it,
            // so the next call prepares the statement afresh.
            if error.sqlState == "0A000" || error.sqlState == "26000" {
                preparedStatements[key] = nil
            }
            throw error
        }
    }

    /// Runs SQL text without parameters, possibly several statements (a DDL script), with
    /// `PQexec`. Returns the result of the last statement.
    @discardableResult
    func simpleQuery(_ sql: String) throws(PostgresError) -> PostgresRows {
        let conn = try liveConnection()
        guard !sql.containsNUL else {
            throw PostgresError(kind: .invalidArgument, message: "SQL text must not contain NUL")
        }
        return try consume(PQexec(conn, sql))
    }

    private func prepare(_ sql: String, types: [UInt32], conn: OpaquePointer) throws(PostgresError) -> String {
        guard !sql.containsNUL else {
            throw PostgresError(kind: .invalidArgument, message: "SQL text must not contain NUL")
        }
        if preparedStatements.count >= Self.preparedStatementLimit, transactionStatus == .idle {
            _ = try consume(PQexec(conn, "DEALLOCATE ALL"))
            preparedStatements.removeAll()
            scopedStatements.removeAll()
        }
        statementCounter += 1
        let name = "vpp_\(statementCounter)"
        _ = try consume(PQprepare(conn, name, sql, Int32(types.count), types))
        return name
    }

    /// Hands libpq one C string per parameter, alive for the duration of `body`.
    private func withParameterValues(
        _ binds: [PostgresBind],
        _ body: ([UnsafePointer<CChar>?]) -> OpaquePointer?
    ) throws(PostgresError) -> OpaquePointer? {
        for (index, bind) in binds.enumerated() where bind.text?.containsNUL == true {
            // The value itself is not quoted: parameters may be secrets.
            throw PostgresError(kind: .invalidArgument, message: "parameter $\(index + 1) contains a NUL byte")
        }
        let copies = binds.map { $0.text.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        return body(copies.map { $0.map { UnsafePointer($0) } })
    }

    private func liveConnection() throws(PostgresError) -> OpaquePointer {
        guard let conn else { throw .connectionFailure("the connection is closed", sqlState: "08003") }
        return conn
    }

    /// Copies a result into Swift values and frees it.
    private func consume(_ result: OpaquePointer?) throws(PostgresError) -> PostgresRows {
        guard let result else { throw currentConnectionError() }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY, PGRES_SINGLE_TUPLE:
            return Self.rows(from: result)
        case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
            throw PostgresError(kind: .invalidArgument, message: "COPY is only supported through copyIn")
        default:
            throw error(from: result)
        }
    }

    private static func rows(from result: OpaquePointer) -> PostgresRows {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var columns: [PostgresColumn] = []
        columns.reserveCapacity(columnCount)
        for column in 0..<columnCount {
            let name = PQfname(result, Int32(column)).map { String(cString: $0) } ?? ""
            columns.append(PostgresColumn(name: name, type: PostgresDataType(oid: PQftype(result, Int32(column)))))
        }
        var cells: [String?] = []
        cells.reserveCapacity(rowCount * columnCount)
        for row in 0..<rowCount {
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) != 0 {
                    cells.append(nil)
                } else {
                    let length = Int(PQgetlength(result, Int32(row), Int32(column)))
                    let value = PQgetvalue(result, Int32(row), Int32(column))!
                    let bytes = UnsafeRawBufferPointer(start: value, count: length)
                    cells.append(String(decoding: bytes, as: UTF8.self))
                }
            }
        }
        let tag = PQcmdStatus(result).map { String(cString: $0) } ?? ""
        let tuples = PQcmdTuples(result).map { String(cString: $0) } ?? ""
        return PostgresRows(columns: columns, cells: cells, commandTag: tag, affectedRows: Int(tuples))
    }

    /// The error of a failed result. Anything on a connection that libpq now considers broken is
    /// a connection failure, whatever the server said last.
    private func error(from result: OpaquePointer) -> PostgresError {
        func field(_ code: Character) -> String? {
            PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        let message = field("M") ?? PQresultErrorMessage(result).map { Self.trimmed(String(cString: $0)) } ?? ""
        var error = PostgresError.server(
            sqlState: field("C"),
            severity: field("V") ?? field("S"),
            message: message.isEmpty ? "unknown error" : message,
            detail: field("D"),
            hint: field("H"),
            constraint: field("n"),
            schema: field("s"),
            table: field("t"),
            column: field("c")
        )
        if isBroken {
            error.kind = .connectionFailure
            if error.sqlState == nil { error.sqlState = "08006" }
        }
        return error
    }

    private func currentConnectionError() -> PostgresError {
        guard let conn else { return .connectionFailure("the connection is closed", sqlState: "08003") }
        let message = Self.errorMessage(conn)
        if PQstatus(conn) == CONNECTION_BAD {
            return .connectionFailure(message, sqlState: "08006")
        }
        return PostgresError(kind: .other, message: message)
    }

    private static func errorMessage(_ conn: OpaquePointer) -> String {
        let message = PQerrorMessage(conn).map { trimmed(String(cString: $0)) } ?? ""
        return message.isEmpty ? "connection failed" : message
    }

    private static func trimmed(_ text: String) -> String {
        text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: Pipelined reads

    /// Runs `setup` (statements sent unnamed, with their parameters: BEGIN, SET LOCAL, a check), then `query`
    /// (prepared, cached per SQL text), then `finish` (e.g. COMMIT), in one round trip with libpq's pipeline mode
    /// (PostgreSQL 14+). Returns the rows of each setup statement and of `query`. A failing statement makes the server
    /// skip the rest up to the sync; its error is thrown, and a transaction it leaves open is the caller's to roll back
    /// (the pool does on release).
    func executePipelined(
        setup: [PostgresQuery],
        _ query: PostgresQuery,
        finish: [String]
    ) throws(PostgresError) -> (setup: [PostgresRows], rows: PostgresRows) {
        let conn = try liveConnection()
        for statement in setup + [query] {
            if let problem = Self.problem(sending: statement) { throw problem }
        }
        for sql in finish where sql.containsNUL {
            throw PostgresError(kind: .invalidArgument, message: "SQL text must not contain NUL")
        }
        let types = query.binds.map(\.type.oid)
        let key = StatementKey(sql: query.sql, types: types)
        // A statement new to this connection is prepared in the pipeline, after the setup: its table names resolve
        // in the search path the setup sets.
        let cached = preparedStatements[key]
        if cached == nil, preparedStatements.count >= Self.preparedStatementLimit, transactionStatus == .idle {
            _ = try consume(PQexec(conn, "DEALLOCATE ALL"))
            preparedStatements.removeAll()
            scopedStatements.removeAll()
        }
        let name: String
        if let cached {
            name = cached
        } else {
            statementCounter += 1
            name = "vpp_\(statementCounter)"
        }
        guard PQenterPipelineMode(conn) == 1 else { throw currentConnectionError() }
        var sent = true
        for statement in setup where sent { sent = Self.send(statement, prepared: nil, on: conn) }
        if sent, cached == nil {
            sent = PQsendPrepare(conn, name, query.sql, Int32(types.count), types) == 1
        }
        let prelude = setup.count + (cached == nil ? 1 : 0)
        if sent { sent = Self.send(query, prepared: name, on: conn) }
        for sql in finish where sent { sent = PQsendQueryParams(conn, sql, 0, nil, nil, nil, nil, 0) == 1 }
        guard sent, PQpipelineSync(conn) == 1 else {
            let error = currentConnectionError()
            // The connection is in an unknown state: closing it makes the pool replace it.
            close()
            throw error
        }
        let outcome = self.drainPipeline(conn, statements: prelude + 1 + finish.count)
        PQexitPipelineMode(conn)
        switch outcome {
        case .success(let results):
            if cached == nil { preparedStatements[key] = name }
            return (Array(results.prefix(setup.count)), results[prelude])
        case .failure(let error):
            // A statement that failed to prepare does not exist; one whose cached plan broke is prepared afresh.
            if cached == nil || error.sqlState == "0A000" || error.sqlState == "26000" {
                preparedStatements[key] = nil
                if cached == nil, transactionStatus == .idle { _ = try? consume(PQexec(conn, "DEALLOCATE \(name)")) }
            }
            throw error
        }
    }

    /// Reads the results of `statements` pipelined statements and the sync that ends them: the rows of each, or the
    /// first error.
    private func drainPipeline(_ conn: OpaquePointer, statements: Int) -> Result<[PostgresRows], PostgresError> {
        var results: [PostgresRows] = []
        results.reserveCapacity(statements)
        var failure: PostgresError?
        for _ in 0..<statements {
            let result = self.readPipelinedResult(conn)
            results.append(result.rows ?? PostgresRows(columns: [], cells: [], commandTag: "", affectedRows: nil))
            if failure == nil { failure = result.failure }
            if isBroken { return .failure(currentConnectionError()) }
        }
        Self.readPipelineSync(conn)
        if let failure { return .failure(failure) }
        if isBroken { return .failure(currentConnectionError()) }
        return .success(results)
    }

    /// Reads the results of the next pipelined statement, which end with a NULL: its rows, or its error (neither for a
    /// statement skipped after an earlier failure).
    private func readPipelinedResult(_ conn: OpaquePointer) -> (rows: PostgresRows?, failure: PostgresError?) {
        var rows: PostgresRows?
        var failure: PostgresError?
        while let result = PQgetResult(conn) {
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                rows = Self.rows(from: result)
            case PGRES_PIPELINE_ABORTED:
                break
            default:
                if failure == nil { failure = self.error(from: result) }
            }
        }
        return (rows, failure)
    }

    /// Reads the sync's own result, which ends the pipeline's results.
    private static func readPipelineSync(_ conn: OpaquePointer) {
        while let result = PQgetResult(conn) {
            let status = PQresultStatus(result)
            PQclear(result)
            if status == PGRES_PIPELINE_SYNC { break }
        }
    }

    /// Sends `statement` in a pipeline: as the prepared statement `prepared`, or unnamed with its SQL and parameter
    /// types. False when libpq could not queue it.
    private static func send(_ statement: PostgresQuery, prepared: String?, on conn: OpaquePointer) -> Bool {
        let copies = statement.binds.map { $0.text.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        let values = copies.map { $0.map { UnsafePointer($0) } }
        if let prepared {
            return PQsendQueryPrepared(conn, prepared, Int32(values.count), values, nil, nil, 0) == 1
        }
        let oids = statement.binds.map(\.type.oid)
        return PQsendQueryParams(conn, statement.sql, Int32(values.count), oids, values, nil, nil, 0) == 1
    }

    /// Why a statement cannot be sent, if it cannot: an error from building it, or a NUL that a C string would cut
    /// short.
    private static func problem(sending statement: PostgresQuery) -> PostgresError? {
        if let buildError = statement.buildError { return buildError }
        if statement.sql.containsNUL {
            return PostgresError(kind: .invalidArgument, message: "SQL text must not contain NUL")
        }
        for (index, bind) in statement.binds.enumerated() where bind.text?.containsNUL == true {
            return PostgresError(kind: .invalidArgument, message: "parameter $\(index + 1) contains a NUL byte")
        }
        return nil
    }

    // MARK: Batched scoped reads

    /// A read in a scope, as `PostgresPool.scopedRead` queues it.
    struct ScopedRead {
        var scope: String
        var enter: [String]
        var query: PostgresQuery
    }

    /// How many reads of the last `executeScopedReads` sent their `enter` statements.
    private(set) var lastBatchEntries = 0

    enum ScopedReadOutcome {
        case rows(PostgresRows)
        case failed(PostgresError)
        /// Not run: an earlier read of the batch failed, which ends the batch. Safe to run again.
        case notRun
    }

    /// Runs several scoped reads in one round trip: an empty search path if the session comes from other work, then
    /// for each read its `enter` statements when the session is not in its scope already, then its query (prepared
    /// once per scope and SQL text); all in libpq's pipeline mode and one implicit transaction, ended by one sync. The session is in each read's scope when its query runs, whatever the reads
    /// before it did: a failure anywhere aborts the rest of the batch (`notRun`) and rolls back every scope set in it,
    /// so no query can run in a scope it did not ask for. Reads have no effects, so the rows of the reads before a
    /// failure stand. Leaves `sessionScope` at the last read's scope, or `unknown` after a failure.
    func executeScopedReads(_ reads: [ScopedRead]) -> [ScopedReadOutcome] {
        var outcomes = [ScopedReadOutcome](repeating: .notRun, count: reads.count)
        guard let conn else {
            return outcomes.map { _ in .failed(.connectionFailure("the connection is closed", sqlState: "08003")) }
        }
        // Reads that cannot be sent fail on their own, before anything goes out.
        var runnable: [Int] = []
        for (index, read) in reads.enumerated() {
            if let problem = Self.problem(sending: read) { outcomes[index] = .failed(problem) } else { runnable.append(index) }
        }
        lastBatchEntries = 0
        guard !runnable.isEmpty else { return outcomes }

        let previousScope = sessionScope
        sessionScope = .unknown
        if scopedStatements.count + runnable.count > Self.scopedStatementLimit, transactionStatus == .idle {
            let evicted = scopedStatements.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(Self.scopedStatementLimit / 4)
            do {
                _ = try consume(PQexec(conn, evicted.map { "DEALLOCATE \($0.value.name)" }.joined(separator: "; ")))
                for entry in evicted { scopedStatements[entry.key] = nil }
            } catch {
                // Some went, some maybe not: start over.
                do {
                    _ = try consume(PQexec(conn, "DEALLOCATE ALL"))
                    preparedStatements.removeAll()
                    scopedStatements.removeAll()
                } catch {
                    return outcomes.map { if case .failed = $0 { $0 } else { .failed(error) } }
                }
            }
        }
        // Reads of the same scope go together, those of the session's scope first: each scope is entered once.
        runnable.sort { first, second in
            let firstHere = previousScope == .scoped(reads[first].scope)
            let secondHere = previousScope == .scoped(reads[second].scope)
            if firstHere != secondHere { return firstHere }
            return (reads[first].scope, first) < (reads[second].scope, second)
        }
        guard PQenterPipelineMode(conn) == 1 else {
            let error = currentConnectionError()
            return outcomes.map { if case .failed = $0 { $0 } else { .failed(error) } }
        }
        /// Each statement sent, with the read it belongs to, and whether it is that read's query.
        var statements: [(read: Int, isQuery: Bool)] = []
        var newStatements: [ScopedStatementKey: String] = [:]
        var keys: [Int: ScopedStatementKey] = [:]
        var scope = previousScope
        var sent = true
        if case .scoped = previousScope {} else {
            // Coming from other work (or a failed batch): an empty search path, which the reads' own `enter` may
            // replace. PostgreSQL recomputes the search path after every change of role, and with the default path
            // (`"$user", public`) that was a catalog look-up and a privilege check per read.
            sent = PQsendQueryParams(conn, "SET search_path TO ''", 0, nil, nil, nil, nil, 0) == 1
            statements.append((runnable[0], false))
        }
        for index in runnable where sent {
            let read = reads[index]
            if scope != .scoped(read.scope) {
                lastBatchEntries += 1
                for sql in read.enter where sent {
                    sent = PQsendQueryParams(conn, sql, 0, nil, nil, nil, nil, 0) == 1
                    statements.append((index, false))
                }
                scope = .scoped(read.scope)
            }
            let types = read.query.binds.map(\.type.oid)
            let key = ScopedStatementKey(scope: read.scope, statement: StatementKey(sql: read.query.sql, types: types))
            keys[index] = key
            let name: String
            scopedStatementUses += 1
            if let cached = scopedStatements[key]?.name {
                name = cached
                scopedStatements[key]?.lastUse = scopedStatementUses
            } else if let new = newStatements[key] {
                name = new
            } else {
                statementCounter += 1
                name = "vpp_\(statementCounter)"
                newStatements[key] = name
                // Prepared in the pipeline after the scope is set: its table names resolve in the read's search path.
                if sent {
                    sent = PQsendPrepare(conn, name, read.query.sql, Int32(types.count), types) == 1
                    statements.append((index, false))
                }
            }
            if sent {
                sent = Self.send(read.query, prepared: name, on: conn)
                statements.append((index, true))
            }
        }
        guard sent, PQpipelineSync(conn) == 1 else {
            let error = currentConnectionError()
            // The connection is in an unknown state: closing it makes the pool replace it.
            close()
            return outcomes.map { if case .failed = $0 { $0 } else { .failed(error) } }
        }

        var failed = false
        for statement in statements {
            let (rows, failure) = self.readPipelinedResult(conn)
            if isBroken {
                let error = currentConnectionError()
                return outcomes.map { if case .rows = $0 { $0 } else { .failed(error) } }
            }
            if let failure {
                failed = true
                outcomes[statement.read] = .failed(failure)
                // A cached statement that is gone (26000) or whose plan no longer fits its tables (0A000, after a
                // migration) is prepared afresh next time.
                if failure.sqlState == "26000" || failure.sqlState == "0A000", let key = keys[statement.read] {
                    scopedStatements[key] = nil
                }
            } else if statement.isQuery, !failed, let rows, case .notRun = outcomes[statement.read] {
                outcomes[statement.read] = .rows(rows)
            }
        }
        Self.readPipelineSync(conn)
        PQexitPipelineMode(conn)
        if isBroken {
            let error = currentConnectionError()
            return outcomes.map { if case .rows = $0 { $0 } else { .failed(error) } }
        }
        if failed {
            // Statements that were prepared before the failure still exist (Parse is not undone by the rollback).
            if transactionStatus == .idle {
                for name in newStatements.values { _ = try? consume(PQexec(conn, "DEALLOCATE \(name)")) }
            }
        } else {
            for (key, name) in newStatements {
                scopedStatements[key] = ScopedStatement(name: name, lastUse: scopedStatementUses)
            }
            sessionScope = scope
        }
        return outcomes
    }

    /// Why a scoped read cannot be sent, if it cannot.
    private static func problem(sending read: ScopedRead) -> PostgresError? {
        if let problem = Self.problem(sending: read.query) { return problem }
        if read.enter.contains(where: { $0.containsNUL }) {
            return PostgresError(kind: .invalidArgument, message: "SQL text must not contain NUL")
        }
        return nil
    }

    // MARK: COPY

    /// Streams rows into `COPY table (columns) FROM STDIN` in text format; returns the row count.
    func copyIn(
        table: String,
        schema: String?,
        columns: [String],
        rows: [[PostgresBind]]
    ) throws(PostgresError) -> Int {
        let conn = try liveConnection()
        var target = try quoteIdentifier(table)
        if let schema { target = try quoteIdentifier(schema) + "." + target }
        let columnList = try columns.map { (column) throws(PostgresError) in try quoteIdentifier(column) }
        guard !columnList.isEmpty else {
            throw PostgresError(kind: .invalidArgument, message: "copyIn needs at least one column")
        }
        let sql = "COPY \(target) (\(columnList.joined(separator: ", "))) FROM STDIN"
        guard let start = PQexec(conn, sql) else { throw currentConnectionError() }
        guard PQresultStatus(start) == PGRES_COPY_IN else {
            defer { PQclear(start) }
            throw error(from: start)
        }
        PQclear(start)

        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 17)
        var encodingError: PostgresError?
        func flush() -> Bool {
            let sent = buffer.withUnsafeBufferPointer { bytes in
                bytes.withMemoryRebound(to: CChar.self) { PQputCopyData(conn, $0.baseAddress, Int32($0.count)) }
            }
            buffer.removeAll(keepingCapacity: true)
            return sent == 1
        }
        rowLoop: for (rowIndex, row) in rows.enumerated() {
            guard row.count == columns.count else {
                encodingError = PostgresError(
                    kind: .invalidArgument,
                    message: "copyIn row \(rowIndex) has \(row.count) values for \(columns.count) columns"
                )
                break
            }
            for (columnIndex, value) in row.enumerated() {
                if columnIndex > 0 { buffer.append(UInt8(ascii: "\t")) }
                guard let text = value.text else {
                    buffer.append(UInt8(ascii: "\\"))
                    buffer.append(UInt8(ascii: "N"))
                    continue
                }
                for byte in text.utf8 {
                    switch byte {
                    case UInt8(ascii: "\\"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                    case UInt8(ascii: "\t"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                    case UInt8(ascii: "\n"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                    case UInt8(ascii: "\r"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                    case 0:
                        encodingError = PostgresError(
                            kind: .invalidArgument,
                            message: "copyIn row \(rowIndex) column \(columnIndex) contains a NUL byte"
                        )
                        break rowLoop
                    default: buffer.append(byte)
                    }
                }
            }
            buffer.append(UInt8(ascii: "\n"))
            if buffer.count >= 1 << 16, !flush() { break }
        }
        if encodingError == nil, !buffer.isEmpty { _ = flush() }
        // Ending with an error message makes the server abort the COPY (and roll back its rows).
        PQputCopyEnd(conn, encodingError == nil ? nil : "copyIn aborted by the client")

        var outcome: Result<Int, PostgresError> = .success(0)
        while let result = PQgetResult(conn) {
            defer { PQclear(result) }
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                let tuples = PQcmdTuples(result).map { String(cString: $0) } ?? ""
                outcome = .success(Int(tuples) ?? 0)
            } else if case .success = outcome {
                outcome = .failure(error(from: result))
            }
        }
        if let encodingError { throw encodingError }
        if isBroken, case .success = outcome { throw currentConnectionError() }
        return try outcome.get()
    }

    // MARK: Notifications (used by PostgresListener)

    var socket: Int32 {
        guard let conn else { return -1 }
        return PQsocket(conn)
    }

    /// Reads what the server sent and returns the notifications among it.
    func consumeNotifications() throws(PostgresError) -> [PostgresNotification] {
        let conn = try liveConnection()
        guard PQconsumeInput(conn) == 1 else { throw currentConnectionError() }
        var notifications: [PostgresNotification] = []
        while let notify = PQnotifies(conn) {
            let channel = String(cString: notify.pointee.relname)
            let payload = notify.pointee.extra.map { String(cString: $0) } ?? ""
            notifications.append(PostgresNotification(channel: channel, payload: payload))
            PQfreemem(notify)
        }
        if PQstatus(conn) == CONNECTION_BAD { throw currentConnectionError() }
        return notifications
    }
}
