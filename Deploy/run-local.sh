#!/usr/bin/env bash
# Starts the whole system locally: installs what is missing, builds vppd, starts it with its own PostgreSQL cluster
# in .vpp-local/, creates an operator key and a demo tenant on first run, prints how to reach them, and keeps
# running until Ctrl-C (which shuts everything down cleanly).
#
# Settings: VPP_PORT (default 7443) and VPP_METRICS_PORT (default 9464), and every other VPP_* setting of vppd.
set -euo pipefail
cd "$(dirname "$0")/.."

bash Deploy/lib/install-deps.sh

echo "==> Building vppd"
swift build --product vppd
VPPD="$(swift build --show-bin-path)/vppd"

export VPP_DATA_DIR="${VPP_DATA_DIR:-$PWD/.vpp-local}"
export VPP_PORT="${VPP_PORT:-7443}"
export VPP_METRICS_PORT="${VPP_METRICS_PORT:-9464}"
mkdir -p "$VPP_DATA_DIR"
chmod 711 "$VPP_DATA_DIR"  # traversable by the postgres user that runs the cluster; not listable

echo "==> Starting vppd (RPC on 127.0.0.1:$VPP_PORT, metrics on 127.0.0.1:$VPP_METRICS_PORT, data in $VPP_DATA_DIR)"
"$VPPD" serve &
vppd_pid=$!
stop() {
    if kill -0 "$vppd_pid" 2>/dev/null; then
        echo "==> Stopping vppd"
        kill -TERM "$vppd_pid" 2>/dev/null || true
        wait "$vppd_pid" 2>/dev/null || true
    fi
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

cat <<INFO

==> The VPP License Server runs locally.
    RPC port:         127.0.0.1:$VPP_PORT   (protocol: Protos/README.md)
    Metrics, health:  http://127.0.0.1:$VPP_METRICS_PORT/metrics   /healthz   /readyz
    Operator key:     $operator_key_file
    Demo tenant:      $(sed -n 1p "$tenant_file")   (its key: line 2 of $tenant_file)

    Try it:  python3 Scripts/protocol-client-example.py --port $VPP_PORT --api-key "\$(sed -n 2p $tenant_file)"

    The Apple simulator, VPP tokens and assignments arrive with later issues; their RPCs answer UNIMPLEMENTED.
    Ctrl-C stops vppd and its PostgreSQL cluster.

INFO
wait "$vppd_pid"
