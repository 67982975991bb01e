import CLibPQ
import Foundation

/// A libpq result as Swift values, and a failure as a `PostgresError`.
extension PostgresConnection {
    /// Copies a result into Swift values and frees it.
    func consume(_ result: OpaquePointer?) throws(PostgresError) -> PostgresRows {
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

    static func rows(from result: OpaquePointer) -> PostgresRows {
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
    func error(from result: OpaquePointer) -> PostgresError {
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

    func currentConnectionError() -> PostgresError {
        guard let conn else { return .connectionFailure("the connection is closed", sqlState: "08003") }
        let message = Self.errorMessage(conn)
        if PQstatus(conn) == CONNECTION_BAD {
            return .connectionFailure(message, sqlState: "08006")
        }
        return PostgresError(kind: .other, message: message)
    }

    static func errorMessage(_ conn: OpaquePointer) -> String {
        let message = PQerrorMessage(conn).map { trimmed(String(cString: $0)) } ?? ""
        return message.isEmpty ? "connection failed" : message
    }

    private static func trimmed(_ text: String) -> String {
        text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
