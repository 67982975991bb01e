/// A column of a result.
public struct PostgresColumn: Sendable, Hashable {
    public var name: String
    public var type: PostgresDataType
}

/// The complete result of one statement, copied out of libpq at once (no C pointer survives).
public struct PostgresRows: Sendable, RandomAccessCollection {
    public let columns: [PostgresColumn]
    /// The command tag, e.g. `INSERT 0 3`.
    public let commandTag: String
    /// Rows inserted, updated, deleted, selected or copied, from the command tag (`PQcmdTuples`);
    /// `nil` for commands that affect no rows (DDL, SET, …).
    public let affectedRows: Int?
    let cells: [String?]
    let columnIndexByName: [String: Int]

    init(columns: [PostgresColumn], cells: [String?], commandTag: String, affectedRows: Int?) {
        self.columns = columns
        self.cells = cells
        self.commandTag = commandTag
        self.affectedRows = affectedRows
        var byName: [String: Int] = [:]
        for (index, column) in columns.enumerated() where byName[column.name] == nil {
            byName[column.name] = index
        }
        self.columnIndexByName = byName
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { columns.isEmpty ? 0 : cells.count / columns.count }

    public subscript(position: Int) -> PostgresRow {
        PostgresRow(rows: self, index: position)
    }

    /// The only row; throws if there is none or more than one.
    public func single() throws(PostgresError) -> PostgresRow {
        guard count == 1 else {
            throw PostgresError(kind: .other, message: "expected exactly one row, got \(count)")
        }
        return self[0]
    }
}

/// One row of a `PostgresRows`.
public struct PostgresRow: Sendable {
    let rows: PostgresRows
    let index: Int

    public var columns: [PostgresColumn] { rows.columns }

    /// Decodes column `column` (0-based) as `type`; ask for an optional type to accept NULL.
    public func decode<Value: PostgresDecodable>(
        _ type: Value.Type = Value.self,
        at column: Int
    ) throws(PostgresDecodingError) -> Value {
        guard rows.columns.indices.contains(column) else {
            throw PostgresDecodingError(
                reason: .noSuchColumn,
                column: "#\(column)",
                columnIndex: column,
                swiftType: "\(Value.self)",
                postgresType: .unknownLiteral
            )
        }
        let info = rows.columns[column]
        do {
            guard let text = rows.cells[index * rows.columns.count + column] else {
                return try Value.postgresNull()
            }
            return try Value(postgresText: text[...], type: info.type)
        } catch {
            throw PostgresDecodingError(
                reason: error,
                column: info.name,
                columnIndex: column,
                swiftType: "\(Value.self)",
                postgresType: info.type
            )
        }
    }

    /// Decodes the first column named `name`.
    public func decode<Value: PostgresDecodable>(
        _ type: Value.Type = Value.self,
        _ name: String
    ) throws(PostgresDecodingError) -> Value {
        guard let column = rows.columnIndexByName[name] else {
            throw PostgresDecodingError(
                reason: .noSuchColumn,
                column: name,
                columnIndex: -1,
                swiftType: "\(Value.self)",
                postgresType: .unknownLiteral
            )
        }
        return try decode(type, at: column)
    }

    /// Whether the column is SQL NULL.
    public func isNull(at column: Int) -> Bool {
        rows.cells[index * rows.columns.count + column] == nil
    }
}
