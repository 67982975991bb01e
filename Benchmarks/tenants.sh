#!/usr/bin/env bash
# Benchmarks/tenants.sh: how long 1,000 tenants take to create, and to migrate at start-up.
#
# 1. builds vppd and vpp-load in release mode;
# 2. starts vppd with a fresh embedded PostgreSQL cluster in a temporary folder (--call-log-level debug);
# 3. creates an operator key and runs `vpp-load create-tenants --count 1000 --concurrency 8`;
# 4. makes every tenant schema "behind" (schema_version 0, audit_events dropped) and times
#    a. `vppd migrate` (the whole command: it starts and stops the cluster itself),
#    b. after making them behind again, the start-up migration of `vppd serve` (its "Schemas are up to date"
#       log line carries took=), and
#    c. a plain restart with nothing to migrate;
# 5. prints a summary; the goal is under 60 s for creating the tenants and migrating them at start-up together.
#
# Everything runs on loopback. The trap stops vppd and the cluster and removes the temporary folder (kept, with
# its logs, when a step failed or KEEP=1). Settings: COUNT (1000), CONCURRENCY (8), SKIP_BUILD=1, KEEP=1, and
# BIN (the folder of vppd and vpp-load; default: the release build's).
set -euo pipefail

source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-1000}
CONCURRENCY=${CONCURRENCY:-8}
WORK=$(mktemp -d /tmp/vpp-bench-tenants.XXXXXX)
# The postgres user runs the cluster when this runs as root: it must be able to reach the data directory.
chmod 755 "$WORK"
DATA=$WORK/data
VPPD_PID=
SUCCEEDED=0


postmaster_pid() {
    local file=$DATA/postgres/postmaster.pid
    [[ -f $file ]] && sed -n 1p "$file" | tr -d ' ' || true
}

stop_vppd() {
    if [[ -n $VPPD_PID ]] && kill -0 "$VPPD_PID" 2>/dev/null; then
        kill -TERM "$VPPD_PID"
        wait "$VPPD_PID" || true
    fi
    VPPD_PID=
}

cleanup() {
    local status=$?
    stop_vppd
    # A cluster left running (vppd killed, or a failed step): a fast shutdown of its postmaster.
    local pid
    pid=$(postmaster_pid)
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        log "stopping the PostgreSQL cluster (pid $pid)"
        kill -INT "$pid" || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    if [[ $SUCCEEDED == 1 && ${KEEP:-0} != 1 ]]; then
        rm -rf "$WORK"
    else
        log "kept $WORK (logs: $WORK/*.log)"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts `vppd serve` in the background, logging to $1, and waits for "vppd started".
start_vppd() {
    local logfile=$1
    "$BIN/vppd" serve --data-dir "$DATA" --port "$PORT" --metrics-port 0 --call-log-level debug >"$logfile" 2>&1 &
    VPPD_PID=$!
    for _ in $(seq 1 1200); do
        if grep -q "vppd started" "$logfile"; then return 0; fi
        if ! kill -0 "$VPPD_PID" 2>/dev/null; then
            log "vppd exited during start-up:"; tail -20 "$logfile" >&2; return 1
        fi
        sleep 0.1
    done
    log "vppd did not start within 120 s"; return 1
}

# The took= of the "Schemas are up to date" line, in seconds.
schemas_took() {
    grep "Schemas are up to date" "$1" | sed -E 's/.*took=([0-9.e+-]+) seconds.*/\1/' | tail -1
}

psql_vpp() {
    local port
    port=$(sed -n 4p "$DATA/postgres/postmaster.pid" | tr -d ' ')
    # The embedded cluster asks for its superuser's password (kept 0600 in the data directory).
    PGPASSWORD="$(cat "$DATA/postgres/vpp-superuser.password")" \
        psql -X -h 127.0.0.1 -p "$port" -U vpp -d vpp -v ON_ERROR_STOP=1 -q "$@"
}

# With vppd running (so its cluster is up): every tenant schema back to version 0, emptied of what the migrations
# made (tables, sequences, functions), so that every migration runs again.
make_schemas_behind() {
    psql_vpp >/dev/null <<'SQL'
SET client_min_messages = warning;
DO $$
DECLARE statement text;
BEGIN
    FOR statement IN
        SELECT format('DROP TABLE IF EXISTS %I.%I CASCADE', n.nspname, c.relname)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN vpp_control.tenants t ON t.schema_name = n.nspname
        WHERE c.relkind IN ('r', 'p')
        UNION ALL
        SELECT format('DROP SEQUENCE IF EXISTS %I.%I CASCADE', n.nspname, c.relname)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN vpp_control.tenants t ON t.schema_name = n.nspname
        WHERE c.relkind = 'S'
        UNION ALL
        SELECT format('DROP FUNCTION IF EXISTS %I.%I CASCADE', n.nspname, p.proname)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN vpp_control.tenants t ON t.schema_name = n.nspname
    LOOP
        EXECUTE statement;
    END LOOP;
END
$$;
UPDATE vpp_control.tenants SET schema_version = 0;
SQL
    local behind
    behind=$(psql_vpp -At -c "SELECT count(*) FROM vpp_control.tenants t WHERE schema_version = 0
        AND to_regclass(format('%I.audit_events', schema_name)) IS NULL")
    [[ $behind == "$COUNT" ]] || { log "expected $COUNT schemas behind, found $behind"; return 1; }
}

# With vppd running: every tenant at the latest version with its audit_events table back.
check_schemas_current() {
    local missing
    missing=$(psql_vpp -At -c "SELECT count(*) FROM vpp_control.tenants t WHERE schema_version = 0
        OR to_regclass(format('%I.audit_events', schema_name)) IS NULL")
    [[ $missing == 0 ]] || { log "$missing tenant schemas were not migrated"; return 1; }
}

seconds_since() { python3 -c "import sys, time; print(f'{time.monotonic() - float(sys.argv[1]):.3f}')" "$1"; }
now() { python3 -c 'import time; print(time.monotonic())'; }

# 1. Build.
build_release vppd vpp-load
PORT=$(free_port)

# 2, 3. A fresh server, an operator key, the tenants.
log "starting vppd on 127.0.0.1:$PORT with a fresh cluster in $DATA"
start_vppd "$WORK/serve-1.log"
VPP_API_KEY=$("$BIN/vppd" admin create-operator-key --data-dir "$DATA" --name benchmark 2>>"$WORK/admin.log")
export VPP_API_KEY
log "creating $COUNT tenants, $CONCURRENCY calls in flight"
if ! "$BIN/vpp-load" create-tenants --port "$PORT" --count "$COUNT" --concurrency "$CONCURRENCY" --json \
    >"$WORK/create-tenants.json"; then
    log "create-tenants failed:"; cat "$WORK/create-tenants.json" >&2; exit 1
fi
stop_vppd

# 4a. vppd migrate, from every schema behind.
start_vppd "$WORK/serve-2.log"
make_schemas_behind
stop_vppd
log "timing vppd migrate over $COUNT schemas behind"
started=$(now)
"$BIN/vppd" migrate --data-dir "$DATA" >"$WORK/migrate.out" 2>"$WORK/migrate.log"
MIGRATE_SECONDS=$(seconds_since "$started")
MIGRATE_TOOK_SECONDS=$(schemas_took "$WORK/migrate.log")
grep -q "tenant schemas: $COUNT, 0 behind" "$WORK/migrate.out" \
    || { log "vppd migrate left schemas behind:"; cat "$WORK/migrate.out" >&2; exit 1; }

# 4b. The start-up migration of vppd serve, from every schema behind again.
start_vppd "$WORK/serve-3.log"
make_schemas_behind
stop_vppd
log "timing the start-up migration of vppd serve over $COUNT schemas behind"
started=$(now)
start_vppd "$WORK/serve-4.log"
STARTUP_WALL_SECONDS=$(seconds_since "$started")
STARTUP_MIGRATION_SECONDS=$(schemas_took "$WORK/serve-4.log")
check_schemas_current
started=$(now)
stop_vppd
STOP_SECONDS=$(seconds_since "$started")

# 4c. A plain restart: nothing to migrate.
started=$(now)
start_vppd "$WORK/serve-5.log"
RESTART_WALL_SECONDS=$(seconds_since "$started")
RESTART_SCHEMAS_SECONDS=$(schemas_took "$WORK/serve-5.log")
stop_vppd

# 5. Summary.
python3 - "$WORK/create-tenants.json" "$COUNT" "$CONCURRENCY" "$MIGRATE_SECONDS" "$STARTUP_MIGRATION_SECONDS" \
    "$STARTUP_WALL_SECONDS" "$RESTART_SCHEMAS_SECONDS" "$RESTART_WALL_SECONDS" "$(nproc)" "$BIN" \
    "$MIGRATE_TOOK_SECONDS" "$STOP_SECONDS" <<'EOF'
import json, sys
create = json.load(open(sys.argv[1]))
count, concurrency = int(sys.argv[2]), int(sys.argv[3])
migrate, startup, startup_wall, restart, restart_wall = map(float, sys.argv[4:9])
cores, binaries = sys.argv[9], sys.argv[10]
migrate_took, stop = float(sys.argv[11]), float(sys.argv[12])
latency = create["latency_us"]
total = create["elapsed_seconds"] + startup
print(f"tenants benchmark ({cores} cores, binaries in {binaries}, --call-log-level debug)")
print(f"  create {count} tenants      {create['elapsed_seconds']:8.2f} s   {create['ok_per_second']:.1f} tenants/s, "
      f"{concurrency} in flight, {create['failed']} failed")
print(f"    latency (ms)            p50 {latency['p50']/1000:.1f}  p90 {latency['p90']/1000:.1f}  "
      f"p99 {latency['p99']/1000:.1f}  p99.9 {latency['p99_9']/1000:.1f}  max {latency['max']/1000:.1f}")
print(f"  start-up migration        {startup:8.2f} s   {count} schemas behind, took= of 'Schemas are up to date' "
      f"(vppd serve ready after {startup_wall:.2f} s)")
print(f"  vppd migrate              {migrate_took:8.2f} s   took= of its 'Schemas are up to date'; the whole command "
      f"{migrate:.2f} s with the cluster's start and shutdown checkpoint")
print(f"  plain restart             {restart:8.2f} s   nothing to migrate (vppd serve ready after {restart_wall:.2f} s)")
print(f"  stop after the migration  {stop:8.2f} s   SIGTERM to exit, the cluster's shutdown checkpoint included")
verdict = "under" if total < 60 else "OVER"
print(f"  create + start-up migration {total:6.2f} s   {verdict} the 60 s goal")
if create["errors"]:
    print(f"  errors: {create['errors']}")
EOF
SUCCEEDED=1
