import CLibPQ
import Foundation

/// Bulk inserts with `COPY … FROM STDIN`.
extension PostgresConnection {
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
}
