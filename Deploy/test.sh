#!/usr/bin/env bash
# Runs every test: installs what is missing, checks the generated protobuf code is fresh, builds, and runs the
# Swift test suite. The tests start their own throwaway PostgreSQL cluster (as the unprivileged `postgres` user
# when run as root) on a free port; set VPP_TEST_DATABASE_URL to use an existing server instead.
set -euo pipefail
cd "$(dirname "$0")/.."

bash Deploy/lib/install-deps.sh

echo "==> Checking that the generated protobuf code matches Protos/ (and the Swift generator's own tests)"
/usr/bin/python3 -B Scripts/protogen/test_generate_swift.py
bash Scripts/generate-protos.sh --check

echo "==> Checking that docs/configuration.md lists every vppd setting as Settings.swift has it"
bash Scripts/settings-table.sh --check

echo "==> Checking the format of the hand-written Swift (Scripts/format.sh --check, .swift-format)"
bash Scripts/format.sh --check

echo "==> Checking the module boundaries (Scripts/check-boundaries.py, and its own tests)"
python3 -B Scripts/test_check_boundaries.py
python3 -B Scripts/check-boundaries.py

echo "==> Fuzzing every message a peer can send and the frame decoder, briefly (Scripts/fuzz.sh runs them for longer)"
bash Scripts/fuzz.sh "${VPP_FUZZ_SECONDS:-20}"

echo "==> Building"
swift build --build-tests "$@"

echo "==> Testing"
swift test --skip-build "$@"
