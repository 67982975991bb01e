/// The control schema `vpp_control`: what the platform owns (tenants, API keys, the operator audit log; later the
/// registry of which tenant holds which VPP token, and the job queue). Statements are schema-qualified.
enum ControlMigrations {
    static let schema = "vpp_control"

    static let all: [Migration] = [
        Migration(
            version: 1,
            name: "tenants, api keys, operator audit",
            sql: """
                CREATE TABLE vpp_control.tenants (
                    id uuid PRIMARY KEY,
                    display_name text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 200),
                    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'suspended')),
                    suspended_reason text NOT NULL DEFAULT '',
                    token_limit integer NOT NULL CHECK (token_limit BETWEEN 0 AND 100000),
                    organization_created_at timestamptz NOT NULL,
                    device_group_assignment boolean NOT NULL DEFAULT false,
                    schema_name text NOT NULL UNIQUE,
                    role_name text NOT NULL UNIQUE,
                    schema_version integer NOT NULL DEFAULT 0,
                    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
                );
                CREATE INDEX tenants_created_idx ON vpp_control.tenants (created_at, id);
                CREATE INDEX tenants_schema_version_idx ON vpp_control.tenants (schema_version);

                CREATE TABLE vpp_control.api_keys (
                    id uuid PRIMARY KEY,
                    kind text NOT NULL CHECK (kind IN ('operator', 'tenant')),
                    tenant_id uuid REFERENCES vpp_control.tenants (id) ON DELETE CASCADE,
                    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
                    prefix text NOT NULL,
                    secret_sha256 text NOT NULL UNIQUE,
                    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    revoked_at timestamptz,
                    last_used_at timestamptz,
                    CHECK ((kind = 'operator') = (tenant_id IS NULL))
                );
                CREATE INDEX api_keys_tenant_idx ON vpp_control.api_keys (tenant_id, created_at, id);

                CREATE TABLE vpp_control.operator_audit (
                    id bigserial PRIMARY KEY,
                    at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    principal text NOT NULL,
                    method text NOT NULL,
                    target text NOT NULL,
                    result text NOT NULL,
                    call_id text NOT NULL,
                    message text NOT NULL DEFAULT ''
                );
                CREATE INDEX operator_audit_target_idx ON vpp_control.operator_audit (target, id);
                """
        )
    ]
}
