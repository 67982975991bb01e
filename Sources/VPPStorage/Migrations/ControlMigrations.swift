/// The control schema `vpp_control`: what the platform owns (tenants, API keys, the operator audit log, the registry of
/// which tenant holds which VPP token, the platform's identity at Apple, and the job queue). Statements are
/// schema-qualified.
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
                \(Migration.auditColumns)
                );
                CREATE INDEX operator_audit_target_idx ON vpp_control.operator_audit (target, id);
                """
        ),
        Migration(
            version: 2,
            name: "token registry, platform identity, job queue",
            sql: """
                -- Who this installation is at Apple: the mdmInfo every token is claimed with (R4). One row, made once, so
                -- every server sharing the database claims tokens under the same identity.
                CREATE TABLE vpp_control.platform (
                    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                    mdm_id uuid NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
                );
                INSERT INTO vpp_control.platform (mdm_id) VALUES (gen_random_uuid());

                -- C4, R5: an Apple location (a token's library) belongs to at most one tenant. The UNIQUE constraint
                -- decides races between tenants; the tenant row's lock serialises a tenant's own uploads (C5).
                CREATE TABLE vpp_control.token_registry (
                    token_id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL REFERENCES vpp_control.tenants (id) ON DELETE CASCADE,
                    location_uid text NOT NULL CONSTRAINT token_registry_location_key UNIQUE,
                    -- false once the token cannot heal (expired, revoked, claimed by another MDM) until it is renewed.
                    sync_enabled boolean NOT NULL DEFAULT true,
                    next_sync_at timestamptz NOT NULL,
                    -- The tenant's outbox holds changes for Apple: set in the same transaction as the ledger change,
                    -- cleared by the push job before it reads the outbox, so no change is left behind.
                    outbox_pending boolean NOT NULL DEFAULT false,
                    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
                );
                CREATE INDEX token_registry_tenant_idx ON vpp_control.token_registry (tenant_id);
                CREATE INDEX token_registry_due_idx ON vpp_control.token_registry (next_sync_at) WHERE sync_enabled;
                CREATE INDEX token_registry_outbox_idx ON vpp_control.token_registry (token_id) WHERE outbox_pending;

                -- C6: the work queue. At most one active job per (kind, subject); finished jobs stay as history.
                CREATE TABLE vpp_control.jobs (
                    id uuid PRIMARY KEY,
                    kind text NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 64),
                    tenant_id uuid REFERENCES vpp_control.tenants (id) ON DELETE CASCADE,
                    subject text NOT NULL,
                    state text NOT NULL
                        CHECK (state IN ('queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled')),
                    trigger text NOT NULL DEFAULT '',
                    -- Fairness across tenants: the tenant's count of active jobs when this one was queued.
                    fair_rank integer NOT NULL DEFAULT 0,
                    payload jsonb NOT NULL DEFAULT '{}',
                    attempt integer NOT NULL DEFAULT 0,
                    max_attempts integer NOT NULL DEFAULT 10,
                    run_after timestamptz NOT NULL DEFAULT clock_timestamp(),
                    queued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    started_at timestamptz,
                    finished_at timestamptz,
                    lease_owner text,
                    lease_expires_at timestamptz,
                    phase text NOT NULL DEFAULT '',
                    items_done bigint NOT NULL DEFAULT 0,
                    items_total bigint NOT NULL DEFAULT 0,
                    error text NOT NULL DEFAULT '',
                    result jsonb NOT NULL DEFAULT '{}',
                    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
                );
                CREATE UNIQUE INDEX jobs_one_active_idx ON vpp_control.jobs (kind, subject)
                    WHERE state IN ('queued', 'running', 'retrying');
                CREATE INDEX jobs_ready_idx ON vpp_control.jobs (fair_rank, run_after)
                    WHERE state IN ('queued', 'retrying');
                CREATE INDEX jobs_lease_idx ON vpp_control.jobs (lease_expires_at) WHERE state = 'running';
                -- fair_rank at enqueue counts the tenant's active jobs: this keeps that count off the history. Its
                -- predicate is finished_at IS NULL (true exactly while a job is active: every final state sets
                -- finished_at) rather than the state list, so that the planner cannot answer the count with a scan of
                -- jobs_one_active_idx, which statistics taken while the queue was idle make look free.
                CREATE INDEX jobs_active_tenant_idx ON vpp_control.jobs (tenant_id) WHERE finished_at IS NULL;
                CREATE INDEX jobs_subject_idx ON vpp_control.jobs (subject, queued_at, id);
                CREATE INDEX jobs_tenant_idx ON vpp_control.jobs (tenant_id, queued_at, id);
                CREATE INDEX jobs_finished_idx ON vpp_control.jobs (finished_at) WHERE finished_at IS NOT NULL;
                """
        ),
    ]
}
