# Benchmarks/lib.sh: what the benchmark scripts share. Sourced by them, not run: `source "$(dirname "$0")/lib.sh"`.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# A log line on stderr, tagged with the script's name.
log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }

# A TCP port free on loopback now.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# build_release PRODUCT…: builds each product in release mode from $ROOT (one `swift build` per product: given
# --product twice, swift build builds only the last one), unless SKIP_BUILD=1; then sets BIN to the release build's
# folder unless BIN is set already. Leaves the shell in $ROOT.
build_release() {
    cd "$ROOT"
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        log "building $* in release mode"
        local product
        for product in "$@"; do swift build -c release --product "$product" >&2; done
    fi
    BIN=${BIN:-$(swift build -c release --show-bin-path)}
}
