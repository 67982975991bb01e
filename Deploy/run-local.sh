#!/usr/bin/env bash
# Starts the whole system locally: installs what is missing, builds vppd and the Apple simulator, starts the
# simulator (Deploy/local/demo-fixture.json) and vppd with its own PostgreSQL cluster in .vpp-local/, creates an
# operator key, a demo tenant and its VPP token on first run, prints how to reach them, and keeps running until
# Ctrl-C (which shuts everything down cleanly).
#
# Settings: VPP_PORT (default 7443), VPP_METRICS_PORT (default 9464), VPP_SIM_PORT (the simulator, default 8090),
# VPP_NOTIFICATION_PORT (Apple's notifications to vppd, default 8444),
# and every other VPP_* setting of vppd.
set -euo pipefail
cd "$(dirname "$0")/.."

bash Deploy/lib/install-deps.sh

echo "==> Building vppd, the Apple simulator and vppctl"
swift build --product vppd
swift build --product vpp-apple-sim
swift build --product vppctl
BIN="$(swift build --show-bin-path)"
VPPD="$BIN/vppd"
SIM="$BIN/vpp-apple-sim"
VPPCTL="$BIN/vppctl"

export VPP_DATA_DIR="${VPP_DATA_DIR:-$PWD/.vpp-local}"
export VPP_PORT="${VPP_PORT:-7443}"
export VPP_METRICS_PORT="${VPP_METRICS_PORT:-9464}"
mkdir -p "$VPP_DATA_DIR"
chmod 711 "$VPP_DATA_DIR"  # traversable by the postgres user that runs the cluster; not listable

export VPP_SIM_PORT="${VPP_SIM_PORT:-8090}"
# Apple cannot be reached from here: vppd talks to the simulator (a faithful copy of Apple's API, docs/apple-simulator.md).
export VPP_APPLE_BASE_URL="${VPP_APPLE_BASE_URL:-http://127.0.0.1:$VPP_SIM_PORT/mdm/v2}"
# Apple's notifications (issue 18) come to vppd's listener: plain HTTP on loopback, which the simulator accepts.
export VPP_NOTIFICATION_PORT="${VPP_NOTIFICATION_PORT:-8444}"
export VPP_NOTIFICATION_URL="${VPP_NOTIFICATION_URL:-http://127.0.0.1:$VPP_NOTIFICATION_PORT/apple/notifications}"
mkdir -p "$VPP_DATA_DIR/apple-sim"
echo "==> Starting the Apple simulator on 127.0.0.1:$VPP_SIM_PORT"
# Events complete a second after they are sent, as Apple's usually do (VPP_SIM_EVENT_DELAY, seconds).
"$SIM" --port "$VPP_SIM_PORT" --fixture Deploy/local/demo-fixture.json --token-dir "$VPP_DATA_DIR/apple-sim" \
    --event-delay "${VPP_SIM_EVENT_DELAY:-1}" &
sim_pid=$!

echo "==> Starting vppd (RPC on 127.0.0.1:$VPP_PORT, metrics on 127.0.0.1:$VPP_METRICS_PORT, data in $VPP_DATA_DIR)"
"$VPPD" serve &
vppd_pid=$!
stop() {
    if kill -0 "$vppd_pid" 2>/dev/null; then
        echo "==> Stopping vppd"
        kill -TERM "$vppd_pid" 2>/dev/null || true
        wait "$vppd_pid" 2>/dev/null || true
    fi
    kill -TERM "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM

# Ready once /readyz answers 200 (database reachable, schemas migrated). Plain bash: no curl needed.
ready() {
    { exec 3<>"/dev/tcp/127.0.0.1/$VPP_METRICS_PORT"; } 2>/dev/null || return 1
    printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3
    local status
    status="$(head -n 1 <&3)"
    exec 3>&-
    [[ "$status" == *" 200 "* ]]
}
for _ in $(seq 1 240); do
    ready && break
    if ! kill -0 "$vppd_pid" 2>/dev/null; then
        echo "error: vppd exited during start-up; its log is above" >&2
        exit 1
    fi
    sleep 0.5
done
ready || { echo "error: vppd did not become ready in 2 minutes" >&2; exit 1; }

operator_key_file="$VPP_DATA_DIR/operator.key"
if [ ! -s "$operator_key_file" ]; then
    (umask 077 && "$VPPD" admin create-operator-key --name "local operator" --log-level warning >"$operator_key_file")
fi
tenant_file="$VPP_DATA_DIR/demo-tenant"
if [ ! -s "$tenant_file" ]; then
    (umask 077 && "$VPPD" admin create-tenant --name "Demo School" --key-name "demo admin" --log-level warning >"$tenant_file")
fi

# The demo tenant's key alone in a file, for vppctl (--api-key-file, VPP_API_KEY_FILE): never on a command line.
tenant_key_file="$VPP_DATA_DIR/demo-tenant.key"
if [ ! -s "$tenant_key_file" ]; then
    (umask 077 && sed -n 2p "$tenant_file" >"$tenant_key_file")
fi

# The demo tenant's VPP token, uploaded with vppctl like any tenant admin would (UploadToken, R1).
token_marker="$VPP_DATA_DIR/demo-token-uploaded"
if [ ! -e "$token_marker" ]; then
    if "$VPPCTL" tokens upload "$VPP_DATA_DIR/apple-sim/2049025000431439.vpptoken" \
        --apple-id vpp-admin@demo-school.example --account-type education --name "Demo School" \
        --server "127.0.0.1:$VPP_PORT" --api-key-file "$tenant_key_file" >/dev/null; then
        touch "$token_marker"
    else
        echo "warning: the demo token could not be uploaded; vppctl's message and vppd's log are above" >&2
    fi
fi

cat <<INFO

==> The VPP License Server runs locally.
    RPC port:         127.0.0.1:$VPP_PORT   (plain TCP on loopback only; production serves TLS: docs/operations.md)
    Metrics, health:  http://127.0.0.1:$VPP_METRICS_PORT/metrics   /healthz   /readyz
    Operator key:     $operator_key_file
    Demo tenant:      $(sed -n 1p "$tenant_file")   (its key: $tenant_key_file)
    Apple simulator:  http://127.0.0.1:$VPP_SIM_PORT/mdm/v2   (control API: /_control, docs/apple-simulator.md)
    Notifications:    $VPP_NOTIFICATION_URL/<tenant>/<token>   (Apple -> vppd; docs/tokens-and-sync.md)
                      The demo tenant holds its VPP token; the first sync ran at upload.

    Try it (README.md, "Walkthrough"), in another terminal:
        export PATH="$BIN:\$PATH" VPP_SERVER=127.0.0.1:$VPP_PORT VPP_API_KEY_FILE=$tenant_key_file
        vppctl tokens list

    Ctrl-C stops vppd, its PostgreSQL cluster and the simulator.

INFO
wait "$vppd_pid"
