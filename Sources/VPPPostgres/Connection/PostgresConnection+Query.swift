import CLibPQ
import Foundation

/// One statement with bound parameters, prepared once per SQL text (`StatementCache`), and SQL scripts.
extension PostgresConnection {
    /// Runs one statement with bound parameters as a prepared statement (cached per SQL text).
    func execute(_ query: PostgresQuery) throws(PostgresError) -> PostgresRows {
        if let buildError = query.buildError { throw buildError }
        let conn = try liveConnection()
        let types = query.binds.map(\.type.oid)
        let key = StatementCache.Key(sql: query.sql, types: types)
        let name: String
        switch statements.statement(key, sessionIsIdle: transactionStatus == .idle) {
        case .reuse(let cached):
            name = cached
        case .prepare(let new, let deallocatingAllFirst):
            try prepare(query.sql, types: types, as: new, deallocatingAllFirst: deallocatingAllFirst, conn: conn)
            statements.prepared(key, as: new)
            name = new
        }
        let result = try withParameterValues(query.binds) { values in
            PQexecPrepared(conn, name, Int32(values.count), values, nil, nil, 0)
        }
        do {
            return try consume(result)
        } catch {
            // A cached plan can become unusable (a table's columns changed under it): forget it,
            // so the next call prepares the statement afresh.
            if StatementCache.invalidatesStatement(sqlState: error.sqlState) { statements.forget(key) }
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

    /// Prepares `sql` as `name`; first, when `deallocatingAllFirst` (the cache is full), deallocates every statement.
    private func prepare(
        _ sql: String,
        types: [UInt32],
        as name: String,
        deallocatingAllFirst: Bool,
        conn: OpaquePointer
    ) throws(PostgresError) {
        guard !sql.containsNUL else {
            throw PostgresError(kind: .invalidArgument, message: "SQL text must not contain NUL")
        }
        if deallocatingAllFirst {
            _ = try consume(PQexec(conn, "DEALLOCATE ALL"))
            statements.deallocatedAll()
        }
        _ = try consume(PQprepare(conn, name, sql, Int32(types.count), types))
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
}
