/// Every tenant's own schema (C3). Statements use unqualified names: they run with `search_path` set to the tenant's
/// schema and as the tenant's own role, which owns what they create.
enum TenantMigrations {
    static let all: [Migration] = [
        Migration(
            version: 1,
            name: "audit log",
            sql: """
                CREATE TABLE audit_events (
                    id bigserial PRIMARY KEY,
                    at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    principal text NOT NULL,
                    method text NOT NULL,
                    target text NOT NULL,
                    result text NOT NULL,
                    call_id text NOT NULL,
                    message text NOT NULL DEFAULT ''
                );
                CREATE INDEX audit_events_target_idx ON audit_events (target, id);
                """
        )
    ]
}
