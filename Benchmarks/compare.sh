#!/usr/bin/env bash
# Benchmarks/compare.sh: the standard comparison, in one run on one machine, as ratios (so the figures hold on a
# noisy machine: both sides of each ratio share the machine's state within a minute).
#
#   0. server memory: vppd's VmRSS before and with 1,000 idle authenticated connections (`vpp-load idle`);
#   1. Ping through vppd against `vpp-load echo-server` (the same frames and sizes answered by a minimal SwiftNIO
#      server): the transport's limit. Same client (`vpp-load ping`), same connections and calls in flight;
#   2. GetLicenseCounts (one app's license counts: one indexed row in the tenant's schema) with 64 calls in flight
#      against `pgbench -S -M prepared` with 64 clients on the same cluster: the database's limit;
#   3. the same read with 1 tenant and with 1,000 tenants (1,000 connections each, 64 calls in flight spread over
#      them, so only the number of tenants differs).
#
# It builds vppd and vpp-load in release mode, starts vppd with a fresh embedded PostgreSQL cluster in a temporary
# folder (as the postgres user when run as root) and the echo server, all on loopback, and stops them at the end.
# Prints a table of figures, ratios and the goals; --json prints one JSON object instead.
# The read runs start with an unmeasured warm-up (WARMUP, 5s; WARMUP_WIDE, 20s for the 1,000-connection runs): with
# 1,000 tenant schemas each database connection first loads a plan and catalog entries per schema, which a server
# that has run for a while has done.
# Settings: DURATION (10s per run), SKIP_BUILD=1, KEEP=1 (keep the folder and logs), BIN (folder of vppd and
# vpp-load), VPPD (another vppd binary to measure, e.g. a build from before a change), POOL (vppd's
# --db-pool-size, default vppd's), PING_CONNECTIONS (4), PING_IN_FLIGHT (32), READ_IN_FLIGHT (64), TENANTS (1000),
# IDLE_CONNECTIONS (1000).
set -euo pipefail

source "$(dirname "$0")/lib.sh"
JSON=0
[[ ${1:-} == --json ]] && JSON=1
DURATION=${DURATION:-10s}
PING_CONNECTIONS=${PING_CONNECTIONS:-4}
PING_IN_FLIGHT=${PING_IN_FLIGHT:-32}
READ_IN_FLIGHT=${READ_IN_FLIGHT:-64}
TENANTS=${TENANTS:-1000}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-1000}
WARMUP=${WARMUP:-5s}
WARMUP_WIDE=${WARMUP_WIDE:-20s}
WORK=$(mktemp -d /tmp/vpp-bench-compare.XXXXXX)
chmod 755 "$WORK"
DATA=$WORK/data
OUT=$WORK/out
mkdir -p "$OUT"
VPPD_PID=
ECHO_PID=
SUCCEEDED=0

load() { cut -d' ' -f1-3 /proc/loadavg; }

cleanup() {
    local status=$?
    if [[ -n $ECHO_PID ]] && kill -0 "$ECHO_PID" 2>/dev/null; then kill -TERM "$ECHO_PID"; wait "$ECHO_PID" || true; fi
    if [[ -n $VPPD_PID ]] && kill -0 "$VPPD_PID" 2>/dev/null; then kill -TERM "$VPPD_PID"; wait "$VPPD_PID" || true; fi
    local pidfile=$DATA/postgres/postmaster.pid pid
    if [[ -f $pidfile ]]; then
        pid=$(sed -n 1p "$pidfile" | tr -d ' ')
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill -INT "$pid" || true
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    fi
    if [[ $SUCCEEDED == 1 && ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; else log "kept $WORK (logs: $WORK/*.log)"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# Every connection is a descriptor in vpp-load and in vppd.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < IDLE_CONNECTIONS + TENANTS + 200)); then
    log "ulimit -n is $(ulimit -n): too low for $IDLE_CONNECTIONS connections"; exit 1
fi
command -v pgbench >/dev/null || PATH=$PATH:/usr/lib/postgresql/15/bin
command -v pgbench >/dev/null || { log "pgbench is missing: apt-get install postgresql-contrib"; exit 1; }

build_release vppd vpp-load
VPPD=${VPPD:-$BIN/vppd}
LOAD=$BIN/vpp-load
PORT=$(free_port)
ECHO_PORT=$(free_port)

log "starting vppd on 127.0.0.1:$PORT with a fresh cluster in $DATA"
pool=()
[[ -n ${POOL:-} ]] && pool=(--db-pool-size "$POOL")
"$VPPD" serve --data-dir "$DATA" --port "$PORT" --metrics-port 0 --call-log-level debug --idle-timeout 600s \
    "${pool[@]}" >"$WORK/vppd.log" 2>&1 &
VPPD_PID=$!
for _ in $(seq 1 1200); do
    grep -q "vppd started" "$WORK/vppd.log" && break
    kill -0 "$VPPD_PID" 2>/dev/null || { log "vppd exited:"; tail -20 "$WORK/vppd.log" >&2; exit 1; }
    sleep 0.1
done
grep -q "vppd started" "$WORK/vppd.log" || { log "vppd did not start"; exit 1; }
PGPORT=$(sed -n 4p "$DATA/postgres/postmaster.pid" | tr -d ' ')
# The embedded cluster asks for its superuser's password (kept 0600 in the data directory): psql and pgbench read it too.
export PGPASSWORD="$(cat "$DATA/postgres/vpp-superuser.password")"
DATABASE_URL="postgres://vpp:$PGPASSWORD@127.0.0.1:$PGPORT/vpp"
VPP_API_KEY=$("$VPPD" admin create-operator-key --data-dir "$DATA" --name compare 2>>"$WORK/admin.log")
export VPP_API_KEY

"$LOAD" echo-server --port "$ECHO_PORT" >"$WORK/echo.log" 2>&1 &
ECHO_PID=$!
for _ in $(seq 1 100); do grep -q listening "$WORK/echo.log" && break; sleep 0.1; done

# Each run's load average goes beside its figure.
run() {
    local name=$1
    shift
    log "$name: $*"
    load >"$OUT/$name.load"
    # vpp-load exits 1 when a call failed; the summary counts them.
    "$@" >"$OUT/$name.json" || log "$name: exit status $? (failed calls are listed in the summary)"
    load >>"$OUT/$name.load"
}

# 0. Memory with idle connections, first, on a server that has not served load yet.
run idle "$LOAD" idle --port "$PORT" --connections "$IDLE_CONNECTIONS" --hold 10s --settle 3s --server-pid "$VPPD_PID" --json

# 1. Ping: echo and vppd, in turns.
ping_run() {
    run "$1" "$LOAD" ping --port "$2" --connections "$PING_CONNECTIONS" --in-flight "$PING_IN_FLIGHT" \
        --duration "$DURATION" --json
}
ping_run ping-echo-1 "$ECHO_PORT"
ping_run ping-vppd-1 "$PORT"
ping_run ping-echo-2 "$ECHO_PORT"
ping_run ping-vppd-2 "$PORT"

# 2. The license-count read against pgbench -S -M prepared, same client count, same cluster.
psql -X -q -h 127.0.0.1 -p "$PGPORT" -U vpp -d vpp -c "CREATE DATABASE pgbench" >/dev/null
pgbench -i -q -s 10 -h 127.0.0.1 -p "$PGPORT" -U vpp pgbench >"$WORK/pgbench-init.log" 2>&1
seconds=$(python3 -c "import sys; s=sys.argv[1]; print(round(float(s[:-2])/1000) if s.endswith('ms') else int(float(s.rstrip('s'))))" "$DURATION")
log "pgbench: -S -M prepared -c $READ_IN_FLIGHT -j 2 -T $seconds"
load >"$OUT/pgbench.load"
pgbench -S -M prepared -c "$READ_IN_FLIGHT" -j 2 -T "$seconds" -h 127.0.0.1 -p "$PGPORT" -U vpp pgbench \
    >"$OUT/pgbench.txt" 2>"$WORK/pgbench.log"
load >>"$OUT/pgbench.load"
run counts-1 "$LOAD" counts --port "$PORT" --database-url "$DATABASE_URL" --tenants 1 --name-prefix read-1- \
    --connections 8 --in-flight $((READ_IN_FLIGHT / 8)) --warmup "$WARMUP" --duration "$DURATION" --json

# 3. 1 tenant against 1,000 tenants: 1,000 connections each, the same calls in flight spread over them.
run counts-wide-1 "$LOAD" counts --port "$PORT" --database-url "$DATABASE_URL" --tenants 1 --name-prefix wide-1- \
    --connections "$TENANTS" --concurrency "$READ_IN_FLIGHT" --warmup "$WARMUP_WIDE" --duration "$DURATION" --json
run counts-wide-n "$LOAD" counts --port "$PORT" --database-url "$DATABASE_URL" --tenants "$TENANTS" \
    --name-prefix wide-n- --connections "$TENANTS" --concurrency "$READ_IN_FLIGHT" --warmup "$WARMUP_WIDE" \
    --duration "$DURATION" --json

SUCCEEDED=1
python3 - "$OUT" "$JSON" "$(nproc)" "$VPPD" "$DURATION" "$PING_CONNECTIONS" "$PING_IN_FLIGHT" "$READ_IN_FLIGHT" \
    "$TENANTS" "$IDLE_CONNECTIONS" <<'PY'
import json, os, re, sys
out, as_json, cores, vppd, duration = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4], sys.argv[5]
ping_conn, ping_flight, read_flight, tenants, idle_conn = map(int, sys.argv[6:11])

def load(name):
    return json.load(open(os.path.join(out, name + ".json")))

def loadavg(name):
    lines = open(os.path.join(out, name + ".load")).read().split("\n")
    return [line.strip() for line in lines if line.strip()]

def lat(r):
    l = r["latency_us"]
    return {k: l[k] / 1000 for k in ("p50", "p90", "p99", "p99_9", "max")}

runs = {}
for name in ["ping-echo-1", "ping-vppd-1", "ping-echo-2", "ping-vppd-2", "counts-1", "counts-wide-1", "counts-wide-n"]:
    r = load(name)
    runs[name] = {"ok_per_second": r["ok_per_second"], "failed": r["failed"], "errors": r["errors"],
                  "latency_ms": lat(r), "load_before_after": loadavg(name)}
text = open(os.path.join(out, "pgbench.txt")).read()
tps = float(re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text).group(1))
latency = re.search(r"latency average = ([0-9.]+) ms", text)
runs["pgbench"] = {"tps": tps, "latency_average_ms": float(latency.group(1)) if latency else None,
                   "load_before_after": loadavg("pgbench")}
idle = load("idle")
runs["idle"] = dict(idle, load_before_after=loadavg("idle"))

echo = sum(runs[n]["ok_per_second"] for n in ("ping-echo-1", "ping-echo-2")) / 2
vppd_ping = sum(runs[n]["ok_per_second"] for n in ("ping-vppd-1", "ping-vppd-2")) / 2
read = runs["counts-1"]["ok_per_second"]
wide_1, wide_n = runs["counts-wide-1"]["ok_per_second"], runs["counts-wide-n"]["ok_per_second"]
rss_mb = (idle.get("server_rss_kb") or 0) * 1024 / 1e6  # MB, as the goal
goals = [
    {"goal": "ping >= 80% of the echo server", "ratio": vppd_ping / echo, "target": 0.80,
     "pass": vppd_ping / echo >= 0.80},
    {"goal": "license-count read >= 60% of pgbench -S", "ratio": read / tps, "target": 0.60, "pass": read / tps >= 0.60},
    {"goal": f"license-count read p99 < 10 ms at {read_flight} in flight", "value_ms": runs["counts-1"]["latency_ms"]["p99"],
     "target": 10, "pass": runs["counts-1"]["latency_ms"]["p99"] < 10},
    {"goal": f"{tenants} tenants >= 90% of 1 tenant", "ratio": wide_n / wide_1, "target": 0.90, "pass": wide_n / wide_1 >= 0.90},
    {"goal": f"< 150 MB resident with {idle_conn} idle connections", "value_mb": rss_mb, "target": 150, "pass": 0 < rss_mb < 150},
]
failed = sum(runs[n].get("failed", 0) for n in runs if n.startswith(("ping", "counts")))
if as_json:
    print(json.dumps({"cores": int(cores), "vppd": vppd, "duration": duration, "runs": runs, "goals": goals,
                      "failed_calls": failed}, sort_keys=True))
    sys.exit(0)

def row(label, value, extra=""):
    print(f"  {label:44} {value:>12}  {extra}")

print(f"standard comparison ({cores} cores, {duration} per run, vppd {vppd}); load average (1/5/15 min) before → after")
print("1. Ping, 32-byte payload, "
      f"{ping_conn} connections × {ping_flight} in flight")
for n in ("ping-echo-1", "ping-vppd-1", "ping-echo-2", "ping-vppd-2"):
    r = runs[n]
    row(n, f"{r['ok_per_second']:,.0f}/s", f"p50 {r['latency_ms']['p50']:.2f} p99 {r['latency_ms']['p99']:.2f} ms  "
        f"load {r['load_before_after'][0]} → {r['load_before_after'][-1]}")
print(f"2. GetLicenseCounts, 1 tenant, 8 connections × {read_flight // 8} in flight, against pgbench -S -M prepared -c {read_flight}")
row("pgbench", f"{tps:,.0f} tps", f"latency average {runs['pgbench']['latency_average_ms']} ms  "
    f"load {runs['pgbench']['load_before_after'][0]} → {runs['pgbench']['load_before_after'][-1]}")
for n in ("counts-1",):
    r = runs[n]
    l = r["latency_ms"]
    row(n, f"{r['ok_per_second']:,.0f}/s", f"p50 {l['p50']:.2f} p90 {l['p90']:.2f} p99 {l['p99']:.2f} p99.9 {l['p99_9']:.2f} "
        f"max {l['max']:.1f} ms  load {r['load_before_after'][0]} → {r['load_before_after'][-1]}")
print(f"3. GetLicenseCounts over {tenants} connections, {read_flight} in flight spread over them")
for n in ("counts-wide-1", "counts-wide-n"):
    r = runs[n]
    l = r["latency_ms"]
    row(n, f"{r['ok_per_second']:,.0f}/s", f"p50 {l['p50']:.2f} p99 {l['p99']:.2f} ms  "
        f"load {r['load_before_after'][0]} → {r['load_before_after'][-1]}")
print(f"0. vppd's memory with {idle_conn} idle authenticated connections")
row("VmRSS before / with them open", f"{(idle.get('server_rss_before_kb') or 0) * 1024 / 1e6:.0f} / {rss_mb:.0f} MB",
    f"peak {(idle.get('server_hwm_kb') or 0) * 1024 / 1e6:.0f} MB, connected in {idle['connect_seconds']:.2f} s")
print("goals")
for g in goals:
    figure = f"{g['ratio'] * 100:.0f}%" if "ratio" in g else (f"{g['value_ms']:.2f} ms" if "value_ms" in g else f"{g['value_mb']:.0f} MB")
    print(f"  {'PASS' if g['pass'] else 'MISS'}  {g['goal']:52} {figure}")
if failed:
    print(f"  ! {failed} calls failed: " + ", ".join(f"{n} {runs[n]['errors']}" for n in runs if runs[n].get("failed")))
PY
