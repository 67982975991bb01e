#!/usr/bin/env bash
# Installs the Debian packages the project builds, tests and runs with. Safe to run again: it installs only what
# is missing. Needs root (or sudo) the first time.
set -euo pipefail

packages=(
    libpq-dev            # libpq: the PostgreSQL driver (C7)
    libprotobuf-c-dev    # libprotobuf-c: protobuf encoding (C7)
    protobuf-c-compiler  # protoc-c: regenerates Sources/VPPProtoC and checks it is fresh
    python3              # the Swift code generator and the protocol example client
    python3-protobuf     # reads protoc's descriptor sets for the Swift code generator
    postgresql           # the server binaries for the embedded and test clusters
    util-linux           # runuser: PostgreSQL refuses to run as root
    pkg-config           # SwiftPM finds libpq and libprotobuf-c through it
    openssl              # makes the test CA and server certificates for the TLS tests
)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "Installing Debian packages: ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
        sudo_cmd=(sudo)
    else
        echo "error: these packages are missing and I am not root (and there is no sudo): ${missing[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's postgresql package creates and starts a cluster of its own; we run our own clusters instead.
if command -v pg_lsclusters >/dev/null && [ -n "$(pg_lsclusters -h 2>/dev/null)" ]; then
    "${sudo_cmd[@]}" service postgresql stop >/dev/null 2>&1 || true
fi
