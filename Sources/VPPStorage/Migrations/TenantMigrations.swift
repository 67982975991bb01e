import VPPLicensing

/// Every tenant's own schema (C3). Statements use unqualified names: they run with `search_path` set to the tenant's
/// schema and as the tenant's own role, which owns what they create.
enum TenantMigrations {
    static let all: [Migration] = [
        Migration(
            version: 1,
            name: "audit log",
            sql: """
                CREATE TABLE audit_events (
                \(Migration.auditColumns)
                );
                CREATE INDEX audit_events_target_idx ON audit_events (target, id);
                """
        ),
        Migration(
            version: 2,
            name: "tokens, catalog, VPP users and assignments seen at Apple",
            sql: """
                -- R1-R6. The token file itself is stored only sealed (AES-GCM) in `secret`.
                CREATE TABLE tokens (
                    id uuid PRIMARY KEY,
                    display_name text NOT NULL CHECK (char_length(display_name) <= 200),
                    apple_id text NOT NULL CHECK (char_length(apple_id) BETWEEN 1 AND 320),
                    account_type text NOT NULL CHECK (account_type IN ('business', 'education')),
                    organization_name text NOT NULL,
                    location_uid text NOT NULL UNIQUE,
                    location_name text NOT NULL DEFAULT '',
                    country_code text NOT NULL DEFAULT '',
                    expires_at timestamptz NOT NULL,
                    -- Base64 of the AES-GCM sealed box (nonce, ciphertext, tag) of the .vpptoken text.
                    secret text NOT NULL,
                    secret_key_id text NOT NULL,
                    -- What Apple said last: 'active', 'expired', 'invalid' (9622/9625), 'claimed_elsewhere' (R4).
                    status text NOT NULL DEFAULT 'active'
                        CHECK (status IN ('active', 'expired', 'invalid', 'claimed_elsewhere')),
                    status_reason text NOT NULL DEFAULT '',
                    other_mdm_name text NOT NULL DEFAULT '',
                    assets_version text,
                    users_version text,
                    assignments_version text,
                    app_count integer NOT NULL DEFAULT 0,
                    book_count integer NOT NULL DEFAULT 0,
                    skipped_asset_count integer NOT NULL DEFAULT 0,
                    user_count integer NOT NULL DEFAULT 0,
                    foreign_user_count integer NOT NULL DEFAULT 0,
                    assignment_count bigint NOT NULL DEFAULT 0,
                    foreign_assignment_count bigint NOT NULL DEFAULT 0,
                    last_sync_job_id uuid,
                    last_sync_started_at timestamptz,
                    last_sync_finished_at timestamptz,
                    last_sync_result text NOT NULL DEFAULT '',
                    last_sync_error text NOT NULL DEFAULT '',
                    last_full_sync_at timestamptz,
                    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
                );
                CREATE INDEX tokens_created_idx ON tokens (created_at, id);

                -- R8, R11, R12: one row per (token, product, pricing): an app bought with two tokens is two assets.
                CREATE TABLE assets (
                    id uuid PRIMARY KEY,
                    token_id uuid NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
                    adam_id text NOT NULL,
                    pricing_param text NOT NULL,
                    product_type text NOT NULL,
                    name text NOT NULL DEFAULT '',
                    bundle_id text NOT NULL DEFAULT '',
                    artwork_url text NOT NULL DEFAULT '',
                    platforms text[] NOT NULL DEFAULT '{}',
                    device_assignable boolean NOT NULL,
                    revocable boolean NOT NULL,
                    unlimited boolean NOT NULL,
                    total_count integer NOT NULL,
                    assigned_count integer NOT NULL,
                    available_count integer NOT NULL,
                    retired_count integer NOT NULL,
                    synced_at timestamptz NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    UNIQUE (token_id, adam_id, pricing_param)
                );
                CREATE INDEX assets_list_idx ON assets (product_type, created_at, id);

                -- R9: custom B2B apps the sync skipped; their data is not synced.
                CREATE TABLE skipped_assets (
                    token_id uuid NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
                    adam_id text NOT NULL,
                    pricing_param text NOT NULL,
                    product_type text NOT NULL,
                    reason text NOT NULL,
                    total_count integer NOT NULL,
                    seen_at timestamptz NOT NULL,
                    PRIMARY KEY (token_id, adam_id, pricing_param)
                );

                -- R10: the VPP users this service created at Apple. Only these are synced; Apple's other users are
                -- counted as foreign and never stored.
                CREATE TABLE vpp_users (
                    token_id uuid NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
                    client_user_id text NOT NULL,
                    email text NOT NULL DEFAULT '',
                    status text NOT NULL DEFAULT 'Registered',
                    id_hash text NOT NULL DEFAULT '',
                    invite_code text NOT NULL DEFAULT '',
                    apple_seen_at timestamptz,
                    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    PRIMARY KEY (token_id, client_user_id)
                );

                -- Licenses this service holds at Apple (made by this service, or by one of its users), as the last sync
                -- saw them. A row is for a user (client_user_id) or a device (serial_number), the other is ''.
                CREATE TABLE apple_assignments (
                    token_id uuid NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
                    adam_id text NOT NULL,
                    pricing_param text NOT NULL,
                    client_user_id text NOT NULL DEFAULT '',
                    serial_number text NOT NULL DEFAULT '',
                    origin text NOT NULL CHECK (origin IN ('service', 'user')),
                    confirmed_at timestamptz,
                    missing_since timestamptz,
                    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    PRIMARY KEY (token_id, adam_id, pricing_param, client_user_id, serial_number),
                    CHECK ((client_user_id = '') <> (serial_number = ''))
                );
                """
        ),
        Migration(
            version: 3,
            name: "directory: users, devices, groups",
            sql: """
                -- What the tenant's identity directory and device enrollment know, fed over RPC.
                CREATE TABLE users (
                    id uuid PRIMARY KEY,
                    external_id text NOT NULL UNIQUE CHECK (char_length(external_id) BETWEEN 1 AND 256),
                    email text NOT NULL DEFAULT '',
                    -- The Apple ID or Managed Apple ID (R19).
                    apple_id text NOT NULL DEFAULT '',
                    display_name text NOT NULL DEFAULT '',
                    -- R20: a policy disables the App Store (iTunes Store) app, so user licensing cannot work.
                    app_store_disabled boolean NOT NULL DEFAULT false,
                    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
                );
                CREATE INDEX users_created_idx ON users (created_at, id);

                CREATE TABLE devices (
                    id uuid PRIMARY KEY,
                    serial_number text NOT NULL UNIQUE CHECK (char_length(serial_number) BETWEEN 1 AND 64),
                    owner_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
                    -- R18: 'automated' (DEP) and 'configurator' devices have no user affinity.
                    enrollment text NOT NULL CHECK (enrollment IN ('user_affiliated', 'automated', 'configurator')),
                    -- R22: the built-in Books app is present.
                    books_app_present boolean NOT NULL DEFAULT true,
                    name text NOT NULL DEFAULT '',
                    model text NOT NULL DEFAULT '',
                    os_version text NOT NULL DEFAULT '',
                    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
                );
                CREATE INDEX devices_created_idx ON devices (created_at, id);
                CREATE INDEX devices_owner_idx ON devices (owner_user_id);

                CREATE TABLE groups (
                    id uuid PRIMARY KEY,
                    external_id text NOT NULL UNIQUE CHECK (char_length(external_id) BETWEEN 1 AND 256),
                    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
                    -- R14: device groups only where the tenant may use them.
                    kind text NOT NULL CHECK (kind IN ('user', 'device')),
                    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
                );
                CREATE INDEX groups_created_idx ON groups (created_at, id);

                CREATE TABLE group_users (
                    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
                    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    added_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    PRIMARY KEY (group_id, user_id)
                );
                CREATE INDEX group_users_user_idx ON group_users (user_id);

                CREATE TABLE group_devices (
                    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
                    device_id uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
                    added_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    PRIMARY KEY (group_id, device_id)
                );
                CREATE INDEX group_devices_device_idx ON group_devices (device_id);
                """
        ),
        Migration(
            version: 4,
            name: "assignments, license ledger, Apple outbox",
            sql: """
                -- R13, R14: an app or book of one token assigned to a group.
                CREATE TABLE assignments (
                    id uuid PRIMARY KEY,
                    asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
                    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
                    action text NOT NULL CHECK (action IN ('required', 'available', 'uninstall')),
                    license_type text NOT NULL CHECK (license_type IN ('user', 'device')),
                    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    UNIQUE (asset_id, group_id)
                );
                CREATE INDEX assignments_group_idx ON assignments (group_id);
                CREATE INDEX assignments_created_idx ON assignments (created_at, id);

                -- Licenses Apple's other users hold (another MDM, Apple Business Manager): seats this service cannot use.
                ALTER TABLE assets ADD COLUMN foreign_assigned integer NOT NULL DEFAULT 0;

                -- R15, R16: the ledger. One row per asset and target (a device, or a user); a row that holds a seat is
                -- 'reserved' (counted here, Apple not yet asked or not yet answered), 'granted' (Apple confirmed),
                -- 'removing' (R17: uninstall asked, freed once removal is reported) or 'releasing' (Apple asked to take
                -- it back). 'waiting' rows wait in wait_seq order. Seats in use never exceed what was bought: every change
                -- of an asset's seats happens with the asset's row locked.
                CREATE TABLE licenses (
                    id uuid PRIMARY KEY,
                    asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
                    target_kind text NOT NULL CHECK (target_kind IN ('device', 'user')),
                    device_id uuid REFERENCES devices (id) ON DELETE CASCADE,
                    user_id uuid REFERENCES users (id) ON DELETE CASCADE,
                    target_id uuid NOT NULL GENERATED ALWAYS AS (coalesce(device_id, user_id)) STORED,
                    -- The device's serial number, kept so a seat can still be released at Apple once the device is gone.
                    serial_number text NOT NULL DEFAULT '',
                    state text NOT NULL CHECK (state IN ('available', 'waiting', 'reserved', 'granted', 'removing',
                                                         'releasing', 'failed', 'not_applicable')),
                    wait_seq bigint,
                    reason text NOT NULL DEFAULT '',
                    install_state text NOT NULL DEFAULT 'none'
                        CHECK (install_state IN ('none', 'installed', 'failed', 'removed')),
                    install_reason text NOT NULL DEFAULT '',
                    since timestamptz NOT NULL DEFAULT clock_timestamp(),
                    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    CHECK ((target_kind = 'device') = (device_id IS NOT NULL)),
                    CHECK ((target_kind = 'user') = (user_id IS NOT NULL))
                );
                CREATE UNIQUE INDEX licenses_target_idx ON licenses (asset_id, target_kind, target_id);
                CREATE INDEX licenses_waiting_idx ON licenses (asset_id, wait_seq) WHERE state = 'waiting';
                CREATE INDEX licenses_state_idx ON licenses (asset_id, state);
                CREATE INDEX licenses_user_target_idx ON licenses (user_id);
                CREATE INDEX licenses_device_target_idx ON licenses (device_id);
                CREATE SEQUENCE licenses_wait_seq;

                -- A device or user deleted from the directory takes its ledger rows with it (ON DELETE CASCADE); a seat
                -- it held is given back at Apple through the outbox, whatever the reclaim policy (a deleted device
                -- cannot report a removal). Rows the ledger deletes itself hold no seat, or were already released.
                CREATE FUNCTION licenses_release_deleted() RETURNS trigger LANGUAGE plpgsql AS $fn$
                BEGIN
                    IF OLD.state IN ('reserved', 'granted', 'removing') THEN
                        INSERT INTO apple_outbox (token_id, operation, adam_id, pricing_param, serial_number, client_user_id)
                        SELECT s.token_id, 'disassociate', s.adam_id, s.pricing_param, OLD.serial_number,
                               CASE WHEN OLD.user_id IS NULL THEN '' ELSE OLD.user_id::text END
                        FROM assets s JOIN tokens t ON t.id = s.token_id
                        WHERE s.id = OLD.asset_id;
                    END IF;
                    RETURN OLD;
                END
                $fn$;
                CREATE TRIGGER licenses_release_deleted BEFORE DELETE ON licenses
                    FOR EACH ROW EXECUTE FUNCTION licenses_release_deleted();

                -- This service's VPP users are linked to directory users (R19, R20).
                ALTER TABLE vpp_users ADD COLUMN user_id uuid REFERENCES users (id) ON DELETE SET NULL;
                CREATE UNIQUE INDEX vpp_users_user_idx ON vpp_users (token_id, user_id) WHERE user_id IS NOT NULL;

                -- The outbox: what Apple must be told, written in the same transaction as the ledger change, so a crash
                -- loses nothing; the push job sends it in batches and follows Apple's events to the end.
                CREATE TABLE apple_outbox (
                    id bigserial PRIMARY KEY,
                    token_id uuid NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
                    operation text NOT NULL CHECK (operation IN ('associate', 'disassociate')),
                    adam_id text NOT NULL DEFAULT '',
                    pricing_param text NOT NULL DEFAULT '',
                    serial_number text NOT NULL DEFAULT '',
                    client_user_id text NOT NULL DEFAULT '',
                    license_id uuid,
                    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent')),
                    event_id text,
                    attempts integer NOT NULL DEFAULT 0,
                    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
                );
                CREATE INDEX apple_outbox_pending_idx ON apple_outbox (token_id, operation, id);
                """
        ),
        Migration(
            version: 5,
            name: "the ledger follows LicenseStateMachine; seats guarded in the database",
            sql: Self.ledgerGuards
        ),
        Migration(
            version: 6,
            name: "Apple's notifications: each token's subscription and the notifications received",
            sql: """
                -- Issue 18. The auth token Apple sends back with every notification is stored sealed, as the token
                -- file is. notification_url is the URL this service registered at Apple ('' when none): a sync that
                -- finds another one there knows someone else re-pointed the token (R4).
                ALTER TABLE tokens
                    ADD COLUMN notification_secret text,
                    ADD COLUMN notification_url text NOT NULL DEFAULT '',
                    ADD COLUMN notification_subscribed_at timestamptz,
                    ADD COLUMN notification_error text NOT NULL DEFAULT '',
                    ADD COLUMN notification_last_received_at timestamptz,
                    ADD COLUMN notification_last_type text NOT NULL DEFAULT '',
                    ADD COLUMN notification_received_count bigint NOT NULL DEFAULT 0,
                    ADD COLUMN notification_refused_count bigint NOT NULL DEFAULT 0,
                    ADD COLUMN notification_missed_at timestamptz;

                -- Every notification received, once (Apple may deliver one several times: the key drops repeats).
                CREATE TABLE apple_notifications (
                    token_id uuid NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
                    notification_id text NOT NULL CHECK (char_length(notification_id) BETWEEN 1 AND 200),
                    type text NOT NULL CHECK (char_length(type) <= 100),
                    event_id text,
                    body text NOT NULL,
                    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    processed_at timestamptz,
                    outcome text NOT NULL DEFAULT '',
                    PRIMARY KEY (token_id, notification_id)
                );
                CREATE INDEX apple_notifications_event_idx ON apple_notifications (token_id, event_id)
                    WHERE event_id IS NOT NULL;
                CREATE INDEX apple_notifications_received_idx ON apple_notifications (token_id, received_at);
                """
        ),
        Migration(
            version: 7,
            name: "the change feed: every change numbered in commit order",
            sql: Self.changeFeed
        ),
    ]

    /// v5 (R15–R17): the database refuses a change of a license's state that `LicenseStateMachine` does not allow,
    /// and a statement that makes an asset hold more seats than it may (bought, minus what others hold at Apple).
    /// The allowed pairs are rows of `license_transitions`, written here from the Swift type; a test compares them,
    /// so a change to the machine needs a migration that rewrites the table.
    ///
    /// The outbox gains 'sending': the push marks rows it is about to send in a committed statement first, so the
    /// ledger knows which associations Apple may already have. An association still 'pending' was never sent and is
    /// cancelled when its seat is given back (nothing to undo at Apple).
    static var ledgerGuards: String {
        let pairs = LicenseStateMachine.allowedTransitionsUnderAnyPolicy.sorted().map { pair in
            "(\(pair.from.map { "'\($0.rawValue)'" } ?? "NULL"), \(pair.to.map { "'\($0.rawValue)'" } ?? "NULL"))"
        }
        let held = LicenseState.sqlList(LicenseState.seatHolding)
        return """
            CREATE TABLE license_transitions (
                from_state text,
                to_state text,
                UNIQUE NULLS NOT DISTINCT (from_state, to_state)
            );
            INSERT INTO license_transitions (from_state, to_state) VALUES
                \(pairs.joined(separator: ",\n    "));

            -- R15: a statement that gives seats (an entry enters a seat-holding state) must leave each asset it
            -- touched within what it may hold. A refund may leave an asset above that; then no new seat is given.
            CREATE FUNCTION licenses_check_seats(entered uuid[]) RETURNS void LANGUAGE plpgsql AS $fn$
            DECLARE
                bad text;
            BEGIN
                SELECT a.id::text INTO bad FROM assets a
                WHERE a.id = ANY(entered) AND NOT a.unlimited
                  AND (SELECT count(*) FROM licenses l WHERE l.asset_id = a.id AND l.state IN \(held))
                      > greatest(0, a.total_count - a.foreign_assigned)
                LIMIT 1;
                IF bad IS NOT NULL THEN
                    RAISE EXCEPTION 'asset % would hold more licenses than were bought (R15)', bad
                        USING ERRCODE = 'check_violation';
                END IF;
            END
            $fn$;

            CREATE FUNCTION licenses_follow_state_machine() RETURNS trigger LANGUAGE plpgsql AS $fn$
            DECLARE
                bad text;
                entered uuid[];
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    SELECT 'none -> ' || n.state INTO bad FROM new_rows n
                    WHERE NOT EXISTS (SELECT 1 FROM license_transitions t WHERE t.from_state IS NULL AND t.to_state = n.state)
                    LIMIT 1;
                    SELECT array_agg(DISTINCT n.asset_id) INTO entered FROM new_rows n WHERE n.state IN \(held);
                ELSE
                    SELECT o.state || ' -> ' || n.state INTO bad FROM old_rows o JOIN new_rows n ON n.id = o.id
                    WHERE o.state <> n.state
                      AND NOT EXISTS (SELECT 1 FROM license_transitions t WHERE t.from_state = o.state AND t.to_state = n.state)
                    LIMIT 1;
                    SELECT array_agg(DISTINCT n.asset_id) INTO entered FROM old_rows o JOIN new_rows n ON n.id = o.id
                    WHERE n.state IN \(held) AND o.state NOT IN \(held);
                END IF;
                IF bad IS NOT NULL THEN
                    RAISE EXCEPTION 'license state change % is not one LicenseStateMachine allows', bad
                        USING ERRCODE = 'check_violation';
                END IF;
                IF entered IS NOT NULL THEN
                    PERFORM licenses_check_seats(entered);
                END IF;
                RETURN NULL;
            END
            $fn$;
            CREATE TRIGGER licenses_follow_state_machine_insert AFTER INSERT ON licenses
                REFERENCING NEW TABLE AS new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION licenses_follow_state_machine();
            CREATE TRIGGER licenses_follow_state_machine_update AFTER UPDATE ON licenses
                REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION licenses_follow_state_machine();

            ALTER TABLE apple_outbox DROP CONSTRAINT apple_outbox_state_check;
            ALTER TABLE apple_outbox ADD CONSTRAINT apple_outbox_state_check
                CHECK (state IN ('pending', 'sending', 'sent'));
            CREATE INDEX apple_outbox_license_idx ON apple_outbox (license_id);

            -- R21: the target asked for an AVAILABLE app (RequestApp): it wants it as if REQUIRED while offered.
            ALTER TABLE licenses ADD COLUMN requested boolean NOT NULL DEFAULT false;

            -- R20: the link that accepts Apple's invitation (service config's template with the user's inviteCode).
            ALTER TABLE vpp_users ADD COLUMN invitation_url text NOT NULL DEFAULT '';

            -- A deleted device or user (ON DELETE CASCADE) gives its seats back: an association never sent is
            -- cancelled; otherwise Apple is asked to take the seat back. 'releasing' rows have their request queued.
            CREATE OR REPLACE FUNCTION licenses_release_deleted() RETURNS trigger LANGUAGE plpgsql AS $fn$
            DECLARE
                cancelled integer;
            BEGIN
                IF OLD.state IN ('reserved', 'granted', 'removing') THEN
                    DELETE FROM apple_outbox
                    WHERE license_id = OLD.id AND operation = 'associate' AND state = 'pending';
                    GET DIAGNOSTICS cancelled = ROW_COUNT;
                    IF cancelled = 0 OR OLD.state = 'granted' THEN
                        INSERT INTO apple_outbox (token_id, operation, adam_id, pricing_param, serial_number,
                                                  client_user_id, license_id)
                        SELECT s.token_id, 'disassociate', s.adam_id, s.pricing_param, OLD.serial_number,
                               CASE WHEN OLD.user_id IS NULL THEN ''
                                    ELSE coalesce((SELECT v.client_user_id FROM vpp_users v
                                                   WHERE v.token_id = s.token_id AND v.user_id = OLD.user_id),
                                                  OLD.user_id::text) END,
                               OLD.id
                        FROM assets s JOIN tokens t ON t.id = s.token_id
                        WHERE s.id = OLD.asset_id;
                    END IF;
                END IF;
                RETURN OLD;
            END
            $fn$;
            """
    }
}
