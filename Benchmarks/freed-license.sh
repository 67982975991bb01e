#!/usr/bin/env bash
# Measures, on the local run (Deploy/run-local.sh in another terminal), how long a freed license takes to reach the
# next waiter and Apple (issue 15, R17): Keynote's 10 licenses held by 10 devices, 5 more waiting; the holders'
# assignment turns to UNINSTALL, 5 devices report the app removed, and the script times the report until the ledger
# shows the 5 waiters licensed with nothing left unconfirmed at Apple (reserved 0, waiting 0).
#
# Settings: VPP_SERVER (default 127.0.0.1:7443), VPP_API_KEY_FILE (default .vpp-local/demo-tenant.key), ROUNDS
# (default 3: each round uses fresh devices and groups).
set -euo pipefail
cd "$(dirname "$0")/.."
export VPP_API_KEY_FILE="${VPP_API_KEY_FILE:-.vpp-local/demo-tenant.key}"
VPPCTL="$(swift build --show-bin-path)/vppctl"
ROUNDS="${ROUNDS:-3}"
APP=361309726 # Keynote: 10 bought in Deploy/local/demo-fixture.json
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

counts() { "$VPPCTL" apps counts "$APP" --json; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d.get('$1', 0))"; }

for round in $(seq 1 "$ROUNDS"); do
    tag="fl$(date +%s)r$round"
    "$VPPCTL" groups create "$tag-holders" --name "$tag holders" --kind device >/dev/null
    "$VPPCTL" groups create "$tag-waiters" --name "$tag waiters" --kind device >/dev/null
    {
        echo "serial_number,enrollment,groups"
        for i in $(seq 1 10); do printf "%s-H%02d,automated,%s-holders\n" "$tag" "$i" "$tag"; done
        for i in $(seq 1 5); do printf "%s-W%02d,automated,%s-waiters\n" "$tag" "$i" "$tag"; done
    } >"$work/devices.csv"
    "$VPPCTL" devices import "$work/devices.csv" >/dev/null
    holders="$("$VPPCTL" assignments create --asset "$APP" --group "$tag-holders" --action required --license device --json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
    waiters="$("$VPPCTL" assignments create --asset "$APP" --group "$tag-waiters" --action required --license device --json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
    for _ in $(seq 1 120); do [ "$(counts | field reserved)" = 0 ] && break; sleep 0.5; done
    "$VPPCTL" assignments update "$holders" --action uninstall >/dev/null
    {
        echo "serial_number,adam_id,outcome"
        for i in $(seq 1 5); do printf "%s-H%02d,%s,removed\n" "$tag" "$i" "$APP"; done
    } >"$work/removed.csv"
    start=$(date +%s%N)
    "$VPPCTL" licenses report "$work/removed.csv" >/dev/null
    while true; do
        json="$(counts)"
        if [ "$(echo "$json" | field waiting)" = 0 ] && [ "$(echo "$json" | field reserved)" = 0 ]; then break; fi
        sleep 0.1
    done
    end=$(date +%s%N)
    printf 'round %d: REMOVED reported -> 5 waiters granted and confirmed at Apple in %d ms\n' "$round" $(((end - start) / 1000000))
    # Clean up: the round's assignments go (their seats return to Keynote's pool).
    "$VPPCTL" assignments delete "$waiters" --yes >/dev/null
    "$VPPCTL" assignments delete "$holders" --yes >/dev/null
    for _ in $(seq 1 120); do [ "$(counts | field reserved)" = 0 ] && [ "$(counts | field in_use)" = 0 ] && break; sleep 0.5; done
done
