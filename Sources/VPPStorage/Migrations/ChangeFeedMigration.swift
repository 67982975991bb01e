import VPPLicensing

extension TenantMigrations {
    /// v7 (issue 19): the tenant's change log, written by triggers in the same transaction as the change it records,
    /// so no writer can forget it and a rolled-back change leaves no entry.
    ///
    /// Entries are numbered when their transaction commits, not when they are written: a deferred trigger takes the
    /// tenant's one `change_counter` row (held until the commit is visible), so sequence numbers follow commit order
    /// and a reader that saw entry N has seen every entry below N that will ever exist. The cost is that committing
    /// transactions that wrote changes in one tenant take turns for the moment of their commit.
    ///
    /// Fixed text only: the fragments interpolated here come from Swift constants (`LicenseState`, the catalog's
    /// count columns, the invitation condition), never from a request. docs/change-feed.md describes each kind.
    static var changeFeed: String {
        let held = LicenseState.sqlList(LicenseState.seatHolding)
        let counted = LicenseState.sqlList(LicenseState.seatHolding + [.waiting])
        let licenseJSON = """
            jsonb_build_object(
                'license_id', l.id, 'adam_id', a.adam_id, 'pricing_param', a.pricing_param,
                'product_type', a.product_type, 'target_kind', l.target_kind,
                'device_id', l.device_id, 'user_id', l.user_id,
                'serial_number', coalesce(d.serial_number, l.serial_number),
                'user_external_id', coalesce(u.external_id, ''),
                'state', l.state, 'install_state', l.install_state, 'requested', l.requested,
                'invitation_pending', \(LicenseLedger.invitationPending),
                'reason', l.reason, 'install_reason', l.install_reason)
            """
        let assignmentJSON = """
            jsonb_build_object('assignment_id', n.id, 'adam_id', a.adam_id, 'pricing_param', a.pricing_param,
                               'product_type', a.product_type, 'group_id', n.group_id, 'action', n.action,
                               'license_type', n.license_type, 'deleted', false)
            """
        let tokenJSON = """
            jsonb_build_object(
                'display_name', n.display_name, 'organization_name', n.organization_name,
                'location_name', n.location_name, 'status', n.status, 'status_reason', n.status_reason,
                'other_mdm_name', n.other_mdm_name, 'expires_at', extract(epoch FROM n.expires_at)::float8)
            """
        return """
            -- One row per change. `seq` is given at commit (see changes_number); until then it is NULL and the row
            -- is visible to its own transaction only.
            CREATE TABLE changes (
                id bigserial PRIMARY KEY,
                seq bigint UNIQUE,
                kind text NOT NULL,
                token_id uuid,
                asset_id uuid,
                data jsonb NOT NULL,
                at timestamptz NOT NULL DEFAULT clock_timestamp()
            );

            -- The tenant's last sequence number, and the highest one pruned (a cursor below it is too old).
            CREATE TABLE change_counter (
                only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
                last_seq bigint NOT NULL DEFAULT 0,
                pruned_through bigint NOT NULL DEFAULT 0
            );
            INSERT INTO change_counter DEFAULT VALUES;
            -- The entries of transactions not yet committed (each transaction sees only its own).
            CREATE INDEX changes_unnumbered_idx ON changes (asset_id) WHERE seq IS NULL;

            CREATE FUNCTION changes_number() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
            DECLARE
                next bigint;
            BEGIN
                UPDATE change_counter SET last_seq = last_seq + 1 RETURNING last_seq INTO next;
                UPDATE changes SET seq = next WHERE id = NEW.id;
                -- One notification per transaction (PostgreSQL folds equal payloads), sent when it commits.
                PERFORM pg_notify('vpp_changes', TG_TABLE_SCHEMA);
                RETURN NULL;
            END
            $fn$;
            CREATE CONSTRAINT TRIGGER changes_number AFTER INSERT ON changes
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION changes_number();

            -- The counts last reported for each asset, so a COUNTS entry is written only when they differ, and a
            -- LICENSES_EXHAUSTED entry only when an asset becomes exhausted.
            CREATE TABLE change_asset_state (
                asset_id uuid PRIMARY KEY REFERENCES assets (id) ON DELETE CASCADE,
                counts jsonb NOT NULL DEFAULT '{}',
                exhausted boolean NOT NULL DEFAULT false
            );

            -- COUNTS (and LICENSES_EXHAUSTED) for the assets a statement touched: the same counts every RPC reports
            -- (CatalogStore.ledgerCountColumns, turned into LicenseCounts by LedgerCounts). Each asset's reported
            -- state is locked first, so two transactions report one asset in the order they commit.
            CREATE FUNCTION changes_record_counts(touched uuid[]) RETURNS void LANGUAGE plpgsql
                SET search_path FROM CURRENT AS $fn$
            DECLARE
                r record;
            BEGIN
                IF touched IS NULL OR cardinality(touched) = 0 THEN
                    RETURN;
                END IF;
                INSERT INTO change_asset_state (asset_id)
                SELECT id FROM assets WHERE id = ANY(touched) ORDER BY id ON CONFLICT DO NOTHING;
                PERFORM 1 FROM change_asset_state WHERE asset_id = ANY(touched) ORDER BY asset_id FOR UPDATE;
                FOR r IN
                    SELECT a.id, a.token_id, s.counts AS old_counts, s.exhausted AS old_exhausted,
                           jsonb_build_object(
                               'adam_id', a.adam_id, 'pricing_param', a.pricing_param, 'product_type', a.product_type,
                               'total', a.total_count, 'unlimited', a.unlimited, 'held_elsewhere', a.foreign_assigned,
                               'held', c.held, 'reserved', c.reserved, 'waiting', c.waiting) AS counts,
                           (NOT a.unlimited AND c.waiting > 0 AND c.held + a.foreign_assigned >= a.total_count)
                               AS exhausted
                    FROM assets a JOIN change_asset_state s ON s.asset_id = a.id
                    CROSS JOIN LATERAL (
                        SELECT \(CatalogStore.ledgerCountColumns) FROM licenses l WHERE l.asset_id = a.id
                    ) c
                    WHERE a.id = ANY(touched)
                    ORDER BY a.id
                LOOP
                    IF r.counts IS DISTINCT FROM r.old_counts THEN
                        INSERT INTO changes (kind, token_id, asset_id, data)
                        VALUES ('counts', r.token_id, r.id, r.counts);
                        IF r.exhausted AND NOT r.old_exhausted THEN
                            INSERT INTO changes (kind, token_id, asset_id, data)
                            VALUES ('licenses_exhausted', r.token_id, r.id, r.counts);
                        END IF;
                        UPDATE change_asset_state SET counts = r.counts, exhausted = r.exhausted
                        WHERE asset_id = r.id;
                    END IF;
                END LOOP;
            END
            $fn$;

            -- LICENSE entries for licenses that exist (as they are now).
            CREATE FUNCTION changes_record_licenses(ids uuid[]) RETURNS void LANGUAGE sql
                SET search_path FROM CURRENT AS $fn$
                INSERT INTO changes (kind, token_id, asset_id, data)
                SELECT 'license', a.token_id, l.asset_id, \(licenseJSON) || jsonb_build_object('ended', false)
                FROM licenses l JOIN assets a ON a.id = l.asset_id
                LEFT JOIN devices d ON d.id = l.device_id LEFT JOIN users u ON u.id = l.user_id
                WHERE l.id = ANY(ids)
                ORDER BY l.id;
            $fn$;

            CREATE FUNCTION changes_licenses() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
            DECLARE
                ids uuid[];
                touched uuid[];
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    SELECT array_agg(n.id), array_agg(DISTINCT n.asset_id) FILTER (WHERE n.state IN \(counted))
                    INTO ids, touched FROM new_rows n;
                    IF ids IS NOT NULL THEN
                        PERFORM changes_record_licenses(ids);
                    END IF;
                ELSIF TG_OP = 'UPDATE' THEN
                    SELECT array_agg(n.id) FILTER (
                               WHERE (o.state, o.install_state, o.requested, o.reason, o.install_reason)
                                     IS DISTINCT FROM (n.state, n.install_state, n.requested, n.reason, n.install_reason)),
                           array_agg(DISTINCT n.asset_id) FILTER (WHERE o.state <> n.state)
                    INTO ids, touched
                    FROM old_rows o JOIN new_rows n ON n.id = o.id;
                    IF ids IS NOT NULL THEN
                        PERFORM changes_record_licenses(ids);
                    END IF;
                    -- R15: waiters that got a license. An entry that began waiting in this same transaction never
                    -- waited for anyone to see (its 'waiting' entry is one of this transaction's, still unnumbered).
                    INSERT INTO changes (kind, token_id, asset_id, data)
                    SELECT 'waiters_served', a.token_id, a.id,
                           jsonb_build_object('adam_id', a.adam_id, 'pricing_param', a.pricing_param,
                                              'product_type', a.product_type, 'count', count(*))
                    FROM old_rows o JOIN new_rows n ON n.id = o.id JOIN assets a ON a.id = n.asset_id
                    WHERE o.state = 'waiting' AND n.state IN \(held)
                      AND NOT EXISTS (
                          SELECT 1 FROM changes c
                          WHERE c.seq IS NULL AND c.kind = 'license' AND c.asset_id = o.asset_id
                            AND c.data->>'license_id' = o.id::text AND c.data->>'state' = 'waiting')
                    GROUP BY a.id, a.token_id, a.adam_id, a.pricing_param, a.product_type
                    ORDER BY a.id;
                ELSE
                    -- Entries that ended. An asset deleted with its token ends its entries without one each: the
                    -- TOKEN entry (deleted) says so.
                    INSERT INTO changes (kind, token_id, asset_id, data)
                    SELECT 'license', a.token_id, l.asset_id, \(licenseJSON) || jsonb_build_object('ended', true)
                    FROM old_rows l JOIN assets a ON a.id = l.asset_id
                    LEFT JOIN devices d ON d.id = l.device_id LEFT JOIN users u ON u.id = l.user_id
                    ORDER BY l.id;
                    -- R17: seats given back at Apple (a 'releasing' entry ends once Apple confirms).
                    INSERT INTO changes (kind, token_id, asset_id, data)
                    SELECT 'reclaim_done', a.token_id, a.id,
                           jsonb_build_object('adam_id', a.adam_id, 'pricing_param', a.pricing_param,
                                              'product_type', a.product_type, 'count', count(*))
                    FROM old_rows l JOIN assets a ON a.id = l.asset_id
                    WHERE l.state = 'releasing'
                    GROUP BY a.id, a.token_id, a.adam_id, a.pricing_param, a.product_type
                    ORDER BY a.id;
                    SELECT array_agg(DISTINCT l.asset_id) FILTER (WHERE l.state IN \(counted))
                    INTO touched FROM old_rows l;
                END IF;
                PERFORM changes_record_counts(touched);
                RETURN NULL;
            END
            $fn$;
            CREATE TRIGGER changes_licenses_insert AFTER INSERT ON licenses
                REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_licenses();
            CREATE TRIGGER changes_licenses_update AFTER UPDATE ON licenses
                REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION changes_licenses();
            CREATE TRIGGER changes_licenses_delete AFTER DELETE ON licenses
                REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_licenses();

            -- R20: a user accepting Apple's invitation (or losing it) changes the state of their user licenses.
            CREATE FUNCTION changes_vpp_users() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
            DECLARE
                ids uuid[];
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    SELECT array_agg(l.id) INTO ids
                    FROM new_rows n JOIN assets a ON a.token_id = n.token_id
                    JOIN licenses l ON l.asset_id = a.id AND l.user_id = n.user_id
                    WHERE n.status = 'Associated';
                ELSE
                    SELECT array_agg(l.id) INTO ids
                    FROM old_rows o JOIN new_rows n ON n.token_id = o.token_id AND n.client_user_id = o.client_user_id
                    JOIN assets a ON a.token_id = n.token_id
                    JOIN licenses l ON l.asset_id = a.id AND l.user_id IN (n.user_id, o.user_id)
                    WHERE (o.status = 'Associated') IS DISTINCT FROM (n.status = 'Associated')
                       OR o.user_id IS DISTINCT FROM n.user_id;
                END IF;
                IF ids IS NOT NULL THEN
                    PERFORM changes_record_licenses(ids);
                END IF;
                RETURN NULL;
            END
            $fn$;
            CREATE TRIGGER changes_vpp_users_insert AFTER INSERT ON vpp_users
                REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_vpp_users();
            CREATE TRIGGER changes_vpp_users_update AFTER UPDATE ON vpp_users
                REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION changes_vpp_users();

            -- R13, R14: assignments made, changed (their action) and deleted.
            CREATE FUNCTION changes_assignments() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    INSERT INTO changes (kind, token_id, asset_id, data)
                    SELECT 'assignment', a.token_id, n.asset_id,
                           \(assignmentJSON) || jsonb_build_object('deleted', true)
                    FROM old_rows n JOIN assets a ON a.id = n.asset_id
                    ORDER BY n.id;
                ELSIF TG_OP = 'INSERT' THEN
                    INSERT INTO changes (kind, token_id, asset_id, data)
                    SELECT 'assignment', a.token_id, n.asset_id, \(assignmentJSON)
                    FROM new_rows n JOIN assets a ON a.id = n.asset_id
                    ORDER BY n.id;
                ELSE
                    INSERT INTO changes (kind, token_id, asset_id, data)
                    SELECT 'assignment', a.token_id, n.asset_id, \(assignmentJSON)
                    FROM old_rows o JOIN new_rows n ON n.id = o.id JOIN assets a ON a.id = n.asset_id
                    WHERE (o.action, o.license_type) IS DISTINCT FROM (n.action, n.license_type)
                    ORDER BY n.id;
                END IF;
                RETURN NULL;
            END
            $fn$;
            CREATE TRIGGER changes_assignments_insert AFTER INSERT ON assignments
                REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_assignments();
            CREATE TRIGGER changes_assignments_update AFTER UPDATE ON assignments
                REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION changes_assignments();
            CREATE TRIGGER changes_assignments_delete AFTER DELETE ON assignments
                REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_assignments();

            -- R8: Apple's counts moved (a purchase, a refund, seats taken elsewhere), or an asset came or went.
            CREATE FUNCTION changes_assets() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
            DECLARE
                touched uuid[];
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    SELECT array_agg(n.id) INTO touched FROM new_rows n;
                ELSIF TG_OP = 'UPDATE' THEN
                    SELECT array_agg(n.id) INTO touched FROM old_rows o JOIN new_rows n ON n.id = o.id
                    WHERE (o.total_count, o.foreign_assigned, o.unlimited)
                          IS DISTINCT FROM (n.total_count, n.foreign_assigned, n.unlimited);
                ELSE
                    -- Gone from Apple while its token stays (a token deleted says so once, in its TOKEN entry).
                    INSERT INTO changes (kind, token_id, asset_id, data)
                    SELECT 'counts', o.token_id, o.id,
                           jsonb_build_object('adam_id', o.adam_id, 'pricing_param', o.pricing_param,
                                              'product_type', o.product_type, 'removed', true)
                    FROM old_rows o JOIN tokens t ON t.id = o.token_id
                    ORDER BY o.id;
                END IF;
                PERFORM changes_record_counts(touched);
                RETURN NULL;
            END
            $fn$;
            CREATE TRIGGER changes_assets_insert AFTER INSERT ON assets
                REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_assets();
            CREATE TRIGGER changes_assets_update AFTER UPDATE ON assets
                REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION changes_assets();
            CREATE TRIGGER changes_assets_delete AFTER DELETE ON assets
                REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_assets();

            -- Derived: the expiry warning last given for a token (30, 14 or 7 days before), written by the feed's
            -- maintenance; a renewal (a later expiry) clears it so the next expiry warns again.
            ALTER TABLE tokens ADD COLUMN expiry_warning_days integer;
            CREATE FUNCTION changes_tokens_renewed() RETURNS trigger LANGUAGE plpgsql AS $fn$
            BEGIN
                IF NEW.expires_at > OLD.expires_at THEN
                    NEW.expiry_warning_days := NULL;
                END IF;
                RETURN NEW;
            END
            $fn$;
            CREATE TRIGGER changes_tokens_renewed BEFORE UPDATE OF expires_at ON tokens
                FOR EACH ROW EXECUTE FUNCTION changes_tokens_renewed();

            -- R1-R6: tokens added, changed (status, expiry, names) and deleted; sync results; derived warnings.
            CREATE FUNCTION changes_tokens() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    INSERT INTO changes (kind, token_id, data)
                    SELECT 'token', n.id, \(tokenJSON) || jsonb_build_object('created', true)
                    FROM new_rows n ORDER BY n.id;
                ELSIF TG_OP = 'DELETE' THEN
                    INSERT INTO changes (kind, token_id, data)
                    SELECT 'token', n.id, \(tokenJSON) || jsonb_build_object('deleted', true)
                    FROM old_rows n ORDER BY n.id;
                ELSE
                    INSERT INTO changes (kind, token_id, data)
                    SELECT 'token', n.id, \(tokenJSON)
                    FROM old_rows o JOIN new_rows n ON n.id = o.id
                    WHERE (o.status, o.status_reason, o.expires_at, o.display_name, o.other_mdm_name, o.location_name)
                          IS DISTINCT FROM
                          (n.status, n.status_reason, n.expires_at, n.display_name, n.other_mdm_name, n.location_name)
                    ORDER BY n.id;
                    -- R4: another MDM took the token over.
                    INSERT INTO changes (kind, token_id, data)
                    SELECT 'token_claimed_elsewhere', n.id, \(tokenJSON)
                    FROM old_rows o JOIN new_rows n ON n.id = o.id
                    WHERE n.status = 'claimed_elsewhere' AND o.status <> 'claimed_elsewhere'
                    ORDER BY n.id;
                    INSERT INTO changes (kind, token_id, data)
                    SELECT 'token_expiring', n.id, \(tokenJSON) || jsonb_build_object('days', n.expiry_warning_days)
                    FROM old_rows o JOIN new_rows n ON n.id = o.id
                    WHERE n.expiry_warning_days IS NOT NULL
                      AND n.expiry_warning_days IS DISTINCT FROM o.expiry_warning_days
                    ORDER BY n.id;
                    -- R7: a sync finished (its result is recorded on the token).
                    INSERT INTO changes (kind, token_id, data)
                    SELECT 'sync', n.id,
                           jsonb_build_object('job_id', n.last_sync_job_id, 'result', n.last_sync_result,
                                              'error', n.last_sync_error,
                                              'finished_at', extract(epoch FROM n.last_sync_finished_at)::float8,
                                              'apps', n.app_count, 'books', n.book_count, 'users', n.user_count,
                                              'assignments', n.assignment_count)
                    FROM old_rows o JOIN new_rows n ON n.id = o.id
                    WHERE n.last_sync_finished_at IS NOT NULL
                      AND n.last_sync_finished_at IS DISTINCT FROM o.last_sync_finished_at
                    ORDER BY n.id;
                END IF;
                RETURN NULL;
            END
            $fn$;
            CREATE TRIGGER changes_tokens_insert AFTER INSERT ON tokens
                REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_tokens();
            CREATE TRIGGER changes_tokens_update AFTER UPDATE ON tokens
                REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION changes_tokens();
            CREATE TRIGGER changes_tokens_delete AFTER DELETE ON tokens
                REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_tokens();

            -- The counts as they stand now are the baseline: only what changes from here is reported.
            INSERT INTO change_asset_state (asset_id, counts, exhausted)
            SELECT a.id,
                   jsonb_build_object(
                       'adam_id', a.adam_id, 'pricing_param', a.pricing_param, 'product_type', a.product_type,
                       'total', a.total_count, 'unlimited', a.unlimited, 'held_elsewhere', a.foreign_assigned,
                       'held', c.held, 'reserved', c.reserved, 'waiting', c.waiting),
                   (NOT a.unlimited AND c.waiting > 0 AND c.held + a.foreign_assigned >= a.total_count)
            FROM assets a
            CROSS JOIN LATERAL (SELECT \(CatalogStore.ledgerCountColumns) FROM licenses l WHERE l.asset_id = a.id) c;
            """
    }
}
