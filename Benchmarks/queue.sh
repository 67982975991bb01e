#!/usr/bin/env bash
# Benchmarks/queue.sh: the job queue alone (C6): no-op jobs through enqueue + claim + succeed, in jobs per second.
#
# Builds vpp-load in release mode and runs `vpp-load queue` (each run starts a throwaway embedded PostgreSQL cluster
# and deletes it afterwards; as root the cluster runs as the postgres user) in four set-ups:
#   1. one enqueue statement per job, durable commits (fsync on, the product's setting);
#   2. enqueues in batches of 100 (JobQueue.enqueue(_: [NewJob])), durable commits;
#   3. and 4. the same with fsync and synchronous_commit off (what the tests use), which shows the CPU cost alone;
#   5. durable commits, 1 worker × 256, 2 producers, batches of 200: the set-up that gives the most through this
#      machine (fewer producers contend less on the queue's indexes than four).
# The goal is 5,000 jobs/s on a 2-core machine. Settings: JOBS (20000), WORKERS (2), CONCURRENCY (64 per worker),
# PRODUCERS (4), SKIP_BUILD=1, BIN (the folder of vpp-load; default: the release build's), DATABASE_URL (a scratch
# database to use instead of throwaway clusters; then only set-ups 1 and 2 run).
set -euo pipefail

source "$(dirname "$0")/lib.sh"
JOBS=${JOBS:-20000}
WORKERS=${WORKERS:-2}
CONCURRENCY=${CONCURRENCY:-64}
PRODUCERS=${PRODUCERS:-4}
OUT=$(mktemp -d /tmp/vpp-bench-queue.XXXXXX)
trap 'rm -rf "$OUT"' EXIT


build_release vpp-load

run() {
    local name=$1
    shift
    local target=()
    if [[ -n ${DATABASE_URL:-} ]]; then target=(--database-url "$DATABASE_URL"); fi
    log "$name: vpp-load queue --jobs $JOBS --workers $WORKERS --concurrency $CONCURRENCY --producers $PRODUCERS $*"
    "$BIN/vpp-load" queue "${target[@]}" --jobs "$JOBS" --workers "$WORKERS" --concurrency "$CONCURRENCY" \
        --producers "$PRODUCERS" --json "$@" >"$OUT/$name.json"
}

run durable-per-job --enqueue-batch 1
run durable-batched --enqueue-batch 100
WORKERS=1 CONCURRENCY=256 PRODUCERS=2 run durable-wide --enqueue-batch 200
if [[ -z ${DATABASE_URL:-} ]]; then
    run fast-per-job --enqueue-batch 1 --unsafe-fast-writes
    run fast-batched --enqueue-batch 100 --unsafe-fast-writes
fi

python3 - "$OUT" "$(nproc)" <<'PY'
import json, os, sys
out, cores = sys.argv[1], sys.argv[2]
print(f"queue benchmark ({cores} cores): no-op jobs through enqueue + claim + succeed")
print(f"  {'set-up':18} {'jobs/s':>8} {'enqueue/s':>10} {'drain/s':>8} {'queued→done p50/p99 ms':>24}  postgres")
for name in ["durable-per-job", "durable-batched", "durable-wide", "fast-per-job", "fast-batched"]:
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        continue
    r = json.load(open(path))
    done = r["queue_to_done_milliseconds"]
    print(f"  {name:18} {r['jobs_per_second']:8.0f} {r['enqueue_per_second']:10.0f} {r['drain_per_second']:8.0f} "
          f"{done['p50']:11.1f} / {done['p99']:8.1f}  {r['postgres'].split(' ')[0]} {r['postgres'].split(', ', 1)[1]}")
    if r["executions"] != r["jobs"] or r["reattempted"]:
        print(f"    ! {r['executions']} handler runs for {r['jobs']} jobs, {r['reattempted']} reattempted")
PY
