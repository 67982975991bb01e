#!/usr/bin/env bash
# Benchmarks/abuse.sh: what hostile peers cost vppd and the client beside them (issue 16), in one run.
#
# Each run: one steady client calls Ping every 10 ms on its own connection while `vpp-load abuse` attacks from
# CONNECTIONS (16) connections for DURATION (20s), each on a thread of its own with blocking sockets:
#   none               the steady client alone (the baseline);
#   metadata-no-key    no Hello, then a Call in a 4 MiB frame with ~2.1 million empty metadata entries;
#   metadata           the same after a Hello;
#   elements           after a Hello with a tenant key: UpsertUsers with ~2.1 million empty users;
#   partial-frame      no Hello: a 4 MiB length prefix, 4 MiB - 1 bytes, then nothing;
#   partial-frame-key  the same after a Hello;
#   close-storm        STORM_CONNECTIONS (10,000) authenticated connections closed at once.
# Reports, per run: how the server answered the attacks, vppd's peak resident memory (VmRSS sampled every 20 ms),
# the steady client's failed calls and p99, and for the storm the steady client's slowest call from the close on.
# Goals (issue 16): peak RSS under 300 MB, no failed call, p99 under 50 ms; the storm's stall well under 1 s.
#
# Builds vppd and vpp-load in release mode and starts vppd with a fresh embedded cluster in a temporary folder.
# Settings: DURATION, CONNECTIONS, STORM_CONNECTIONS, ATTACKS (space-separated, default all), SKIP_BUILD=1, KEEP=1,
# BIN, VPPD (another vppd binary to measure, e.g. a build from before a change). --json prints one JSON object.
set -euo pipefail

source "$(dirname "$0")/lib.sh"
JSON=0
[[ ${1:-} == --json ]] && JSON=1
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-16}
STORM_CONNECTIONS=${STORM_CONNECTIONS:-10000}
ATTACKS=${ATTACKS:-none metadata-no-key metadata elements partial-frame partial-frame-key close-storm}
WORK=$(mktemp -d /tmp/vpp-bench-abuse.XXXXXX)
chmod 755 "$WORK"
DATA=$WORK/data
OUT=$WORK/out
mkdir -p "$OUT"
VPPD_PID=
SUCCEEDED=0

cleanup() {
    local status=$?
    if [[ -n $VPPD_PID ]] && kill -0 "$VPPD_PID" 2>/dev/null; then kill -TERM "$VPPD_PID"; wait "$VPPD_PID" || true; fi
    local pidfile=$DATA/postgres/postmaster.pid pid
    if [[ -f $pidfile ]]; then
        pid=$(sed -n 1p "$pidfile" | tr -d ' ')
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill -INT "$pid" || true
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    fi
    if [[ ${KEEP:-0} == 1 || $SUCCEEDED != 1 ]]; then
        log "kept $WORK (vppd.log, out/)"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The storm's connections are descriptors here and in vppd (which raises its own soft limit to the hard one).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < STORM_CONNECTIONS + 200)); then
    log "ulimit -n is $(ulimit -n): too low for $STORM_CONNECTIONS connections"; exit 1
fi

build_release vppd vpp-load
VPPD=${VPPD:-$BIN/vppd}
LOAD=$BIN/vpp-load
PORT=$(free_port)

log "starting vppd on 127.0.0.1:$PORT with a fresh cluster in $DATA"
# Connections well above the storm's; the idle timeout longer than a run.
"$VPPD" serve --data-dir "$DATA" --port "$PORT" --metrics-port 0 --idle-timeout 600s \
    --max-connections $((STORM_CONNECTIONS + 1000)) >"$WORK/vppd.log" 2>&1 &
VPPD_PID=$!
for _ in $(seq 1 1200); do
    grep -q "vppd started" "$WORK/vppd.log" && break
    kill -0 "$VPPD_PID" 2>/dev/null || { log "vppd exited:"; tail -20 "$WORK/vppd.log" >&2; exit 1; }
    sleep 0.1
done
grep -q "vppd started" "$WORK/vppd.log" || { log "vppd did not start"; exit 1; }
VPP_API_KEY=$("$VPPD" admin create-operator-key --data-dir "$DATA" --name abuse 2>>"$WORK/admin.log")
export VPP_API_KEY

for attack in $ATTACKS; do
    log "$attack: $CONNECTIONS connections, $DURATION"
    # vpp-load exits 1 when a steady call failed; the table says which.
    "$LOAD" abuse --port "$PORT" --attack "$attack" --connections "$CONNECTIONS" --duration "$DURATION" \
        --storm-connections "$STORM_CONNECTIONS" --server-pid "$VPPD_PID" --json >"$OUT/$attack.json" \
        || log "$attack: exit status $?"
    cut -d' ' -f1-3 /proc/loadavg >"$OUT/$attack.load"
    # The server settles (frees what the attack made it hold) before the next run.
    sleep 3
done

SUCCEEDED=1
python3 - "$OUT" "$JSON" "$(nproc)" "$VPPD" "$ATTACKS" <<'PY'
import json, os, sys
out, as_json, cores, vppd, attacks = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4], sys.argv[5].split()
runs = {}
for attack in attacks:
    path = os.path.join(out, attack + ".json")
    text = open(path).read().strip() if os.path.exists(path) else ""
    runs[attack] = json.loads(text) if text else {"error": "no report (see vppd.log)"}
    runs[attack]["load_after"] = open(os.path.join(out, attack + ".load")).read().strip()
goals = []
for attack, r in runs.items():
    if "error" in r:
        goals.append({"goal": f"{attack}: a report", "pass": False})
        continue
    peak_mb = (r.get("server_rss_peak_sampled_kb") or 0) * 1024 / 1e6
    goals.append({"goal": f"{attack}: vppd peak RSS < 300 MB", "value": f"{peak_mb:.0f} MB", "pass": 0 < peak_mb < 300})
    goals.append({"goal": f"{attack}: no failed steady call", "value": str(r["steady_failed"]), "pass": r["steady_failed"] == 0})
    goals.append({"goal": f"{attack}: steady p99 < 50 ms", "value": f"{r['steady_p99_us'] / 1000:.1f} ms",
                  "pass": r["steady_p99_us"] < 50_000})
    if r.get("storm_slowest_steady_call_us") is not None:
        stall = r["storm_slowest_steady_call_us"] / 1000
        goals.append({"goal": f"{attack}: slowest steady call from the close on < 1 s", "value": f"{stall:.1f} ms",
                      "pass": stall < 1000})
if as_json:
    print(json.dumps({"cores": int(cores), "vppd": vppd, "runs": runs, "goals": goals}, sort_keys=True))
    sys.exit(0)
print(f"abuse runs ({cores} cores, vppd {vppd})")
for attack, r in runs.items():
    if "error" in r:
        print(f"  {attack:18} {r['error']}")
        continue
    mb = lambda kb: f"{(kb or 0) * 1024 / 1e6:.0f}"
    line = (f"  {attack:18} {r['connections']:>6} conn  {r['attempts']:>6} attempts  RSS {mb(r['server_rss_before_kb'])}"
            f" → peak {mb(r['server_rss_peak_sampled_kb'])} MB  steady {r['steady_calls']} calls, {r['steady_failed']} failed,"
            f" p50 {r['steady_p50_us'] / 1000:.1f} p99 {r['steady_p99_us'] / 1000:.1f} max {r['steady_max_us'] / 1000:.1f} ms")
    if r.get("storm_slowest_steady_call_us") is not None:
        line += f"  storm: opened {r['storm_open_seconds']:.1f} s, slowest call after close {r['storm_slowest_steady_call_us'] / 1000:.1f} ms"
    print(line)
    for outcome, count in sorted(r["outcomes"].items(), key=lambda kv: -kv[1])[:3]:
        print(f"  {'':18}   server: {count}× {outcome}")
print("goals")
for g in goals:
    print(f"  {'PASS' if g['pass'] else 'MISS'}  {g['goal']:58} {g.get('value', '')}")
PY
