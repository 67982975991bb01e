public import Foundation
public import VPPPostgres

/// One mutating call, as the audit logs keep it.
public struct AuditRecord: Sendable, Hashable {
    public var id: Int64
    public var at: Date
    public var principal: String
    public var method: String
    public var target: String
    public var result: String
    public var callID: String
    public var message: String

    public init(
        id: Int64 = 0,
        at: Date = Date(),
        principal: String,
        method: String,
        target: String,
        result: String,
        callID: String,
        message: String
    ) {
        self.id = id
        self.at = at
        self.principal = principal
        self.method = method
        self.target = target
        self.result = result
        self.callID = callID
        self.message = message
    }
}

/// The audit logs: the operator's in `vpp_control.operator_audit`, each tenant's in its own schema's `audit_events`.
/// The same SQL serves both: the table name is a fixed string chosen in code, the schema comes from `search_path`.
enum AuditTable: String {
    case control = "vpp_control.operator_audit"
    case tenant = "audit_events"
}

public struct AuditLog: Sendable {
    static func insert(
        _ record: AuditRecord,
        into table: AuditTable,
        on transaction: PostgresTransaction?,
        pool: PostgresPool
    )
        async throws
    {
        let query: PostgresQuery = """
            INSERT INTO \(unescaped: table.rawValue) (principal, method, target, result, call_id, message)
            VALUES (\(record.principal), \(record.method), \(String(record.target.prefix(500))), \(record.result),
                    \(record.callID), \(String(record.message.prefix(2000))))
            """
        if let transaction {
            try await transaction.query(query)
        } else {
            try await pool.query(query)
        }
    }

    static func list(
        from table: AuditTable,
        target: String?,
        method: String?,
        pageSize: Int,
        after token: PageToken?,
        run: (PostgresQuery) async throws -> PostgresRows
    ) async throws -> (records: [AuditRecord], next: PageToken?) {
        var beforeID: Int64?
        if let token {
            guard token.values.count == 1, let id = Int64(token.values[0]) else {
                throw StorageError.invalidArgument(
                    "page_token is not a token this server issued.",
                    field: "page.page_token"
                )
            }
            beforeID = id
        }
        // Newest first.
        let rows = try await run(
            """
            SELECT id, at, principal, method, target, result, call_id, message
            FROM \(unescaped: table.rawValue)
            WHERE (\(beforeID)::bigint IS NULL OR id < \(beforeID))
              AND (\(target)::text IS NULL OR target = \(target))
              AND (\(method)::text IS NULL OR method = \(method))
            ORDER BY id DESC
            LIMIT \(pageSize + 1)
            """
        )
        var records: [AuditRecord] = []
        for row in rows.prefix(pageSize) {
            records.append(
                AuditRecord(
                    id: try row.decode(Int64.self, at: 0),
                    at: try row.decode(Date.self, at: 1),
                    principal: try row.decode(String.self, at: 2),
                    method: try row.decode(String.self, at: 3),
                    target: try row.decode(String.self, at: 4),
                    result: try row.decode(String.self, at: 5),
                    callID: try row.decode(String.self, at: 6),
                    message: try row.decode(String.self, at: 7)
                )
            )
        }
        let next = rows.count > pageSize ? records.last.map { PageToken(["\($0.id)"]) } : nil
        return (records, next)
    }
}
