/// One step of a schema's history. Versions start at 1 and never change once released: a change to the schema is a
/// new migration. The SQL runs in one transaction with the migration's bookkeeping, so a migration is applied
/// entirely or not at all.
public struct Migration: Sendable, Hashable {
    public var version: Int
    public var name: String
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

extension Migration {
    /// The columns of both audit logs, the platform's (`vpp_control.operator_audit`) and each tenant's
    /// (`audit_events`): one `AuditRecord` each.
    static let auditColumns = """
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT clock_timestamp(),
            principal text NOT NULL,
            method text NOT NULL,
            target text NOT NULL,
            result text NOT NULL,
            call_id text NOT NULL,
            message text NOT NULL DEFAULT ''
        """
}

extension Array where Element == Migration {
    /// The highest version in the list.
    var latestVersion: Int { self.map(\.version).max() ?? 0 }
}
