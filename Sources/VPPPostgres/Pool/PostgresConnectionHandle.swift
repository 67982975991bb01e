import NIOConcurrencyHelpers

/// A leased connection, valid inside `PostgresPool.withConnection`. Each call hops to one of the
/// pool's threads and back; calls made after the lease ended throw instead of touching a
/// connection that now belongs to someone else.
public struct PostgresConnectionHandle: Sendable {
    let connection: PostgresConnection
    let pool: PostgresPool
    private let isValid = NIOLockedValueBox(true)

    init(connection: PostgresConnection, pool: PostgresPool) {
        self.connection = connection
        self.pool = pool
    }

    func invalidate() { isValid.withLockedValue { $0 = false } }

    /// The server process of this session.
    public var backendPID: Int32 { connection.backendPID }

    /// Runs one statement with bound parameters (prepared once per connection and SQL text).
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await run { connection in try connection.execute(query) }
    }

    /// Runs SQL text without parameters, possibly several statements; returns the last result.
    @discardableResult
    public func simpleQuery(_ sql: String) async throws -> PostgresRows {
        try await run { connection in try connection.simpleQuery(sql) }
    }

    /// `COPY table (columns) FROM STDIN` in text format; returns the number of rows copied.
    @discardableResult
    public func copyIn(
        schema: String? = nil,
        table: String,
        columns: [String],
        rows: [[(any PostgresEncodable)?]]
    ) async throws -> Int {
        try await run { connection in
            try connection.copyIn(
                table: table,
                schema: schema,
                columns: columns,
                rows: rows.map { row in row.map(PostgresBind.init(any:)) }
            )
        }
    }

    private func run<Value: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) throws -> Value
    ) async throws -> Value {
        guard isValid.withLockedValue({ $0 }) else {
            throw PostgresError(kind: .invalidArgument, message: "a connection handle was used after its lease ended")
        }
        let connection = self.connection
        return try await pool.runBlocking { try body(connection) }
    }
}

/// The connection of a running transaction (see `PostgresPool.transaction`).
public struct PostgresTransaction: Sendable {
    public let connection: PostgresConnectionHandle
    /// 1 for the first run of the body, 2 for the first retry, and so on.
    public let attempt: Int

    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await connection.query(query)
    }

    @discardableResult
    public func simpleQuery(_ sql: String) async throws -> PostgresRows {
        try await connection.simpleQuery(sql)
    }

    @discardableResult
    public func copyIn(
        schema: String? = nil,
        table: String,
        columns: [String],
        rows: [[(any PostgresEncodable)?]]
    ) async throws -> Int {
        try await connection.copyIn(schema: schema, table: table, columns: columns, rows: rows)
    }

    /// `SET LOCAL name = value` for the rest of this transaction, with both bound as parameters
    /// (`set_config(name, value, true)`). For `search_path`, pass `quoteIdentifier(schema)`;
    /// `setLocal("role", …)` is `SET LOCAL ROLE`.
    public func setLocal(_ name: String, _ value: String) async throws {
        try await connection.query("SELECT set_config(\(name), \(value), true)")
    }
}
