import CLibPQ
import Foundation

/// Several statements in one round trip with libpq's pipeline mode (PostgreSQL 14+), and what pipelines share: sending
/// a statement, reading its results, reading the sync.
extension PostgresConnection {
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
        let key = StatementCache.Key(sql: query.sql, types: types)
        // A statement new to this connection is prepared in the pipeline, after the setup: its table names resolve
        // in the search path the setup sets.
        let name: String
        let cached: Bool
        switch statements.statement(key, sessionIsIdle: transactionStatus == .idle) {
        case .reuse(let existing):
            name = existing
            cached = true
        case .prepare(let new, let deallocatingAllFirst):
            if deallocatingAllFirst {
                _ = try consume(PQexec(conn, "DEALLOCATE ALL"))
                statements.deallocatedAll()
            }
            name = new
            cached = false
        }
        guard PQenterPipelineMode(conn) == 1 else { throw currentConnectionError() }
        var sent = true
        for statement in setup where sent { sent = Self.send(statement, prepared: nil, on: conn) }
        if sent, !cached {
            sent = PQsendPrepare(conn, name, query.sql, Int32(types.count), types) == 1
        }
        let prelude = setup.count + (cached ? 0 : 1)
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
            if !cached { statements.prepared(key, as: name) }
            return (Array(results.prefix(setup.count)), results[prelude])
        case .failure(let error):
            // A statement that failed to prepare does not exist; one whose cached plan broke is prepared afresh.
            if !cached || StatementCache.invalidatesStatement(sqlState: error.sqlState) {
                statements.forget(key)
                if !cached, transactionStatus == .idle { _ = try? consume(PQexec(conn, "DEALLOCATE \(name)")) }
            }
            throw error
        }
    }

    /// Reads the results of `statements` pipelined statements and the sync that ends them: the rows of each, or the
    /// first error.
    private func drainPipeline(_ conn: OpaquePointer, statements count: Int) -> Result<[PostgresRows], PostgresError> {
        var results: [PostgresRows] = []
        results.reserveCapacity(count)
        var failure: PostgresError?
        for _ in 0..<count {
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
    func readPipelinedResult(_ conn: OpaquePointer) -> (rows: PostgresRows?, failure: PostgresError?) {
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
    static func readPipelineSync(_ conn: OpaquePointer) {
        while let result = PQgetResult(conn) {
            let status = PQresultStatus(result)
            PQclear(result)
            if status == PGRES_PIPELINE_SYNC { break }
        }
    }

    /// Sends `statement` in a pipeline: as the prepared statement `prepared`, or unnamed with its SQL and parameter
    /// types. False when libpq could not queue it.
    static func send(_ statement: PostgresQuery, prepared: String?, on conn: OpaquePointer) -> Bool {
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
    static func problem(sending statement: PostgresQuery) -> PostgresError? {
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
}
