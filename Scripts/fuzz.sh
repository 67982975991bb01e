#!/usr/bin/env bash
# Fuzzes the decoding of everything a peer can send (issue 16): the envelope (ClientFrame and the messages inside it)
# and every request message of Protos/, through the generated protobuf-c code the server decodes with, under
# libFuzzer with AddressSanitizer and UndefinedBehaviorSanitizer. The input's first byte picks the message type; the
# rest is the encoded message. Each input that decodes is encoded again and freed, so leaks and bad frees show too.
#
# Then the same for the Swift side, `vpp-fuzz-frames` (Sources/vpp-fuzz-frames): one connection's bytes, cut into
# reads, through the server's FrameDecoder (pre-authentication limit, full limit, frame budget), the wire scans, the
# ClientFrame decoder and the connection state machine, built with -sanitize=fuzzer,address.
#
# Usage: Scripts/fuzz.sh [SECONDS]   (each target runs that long; default 60; Deploy/test.sh runs a short smoke)
# VPP_FUZZ_SWIFT=0 skips the Swift target (its first build takes minutes: SwiftNIO is built instrumented too).
# Needs clang with libFuzzer (the Swift toolchain's) and libprotobuf-c-dev. Crashes land in .build-fuzz/crashes/
# (C target) and .build-fuzz/crashes-swift/; `swift build --product vpp-fuzz-frames` builds a replayer for them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_TO_RUN="${1:-60}"
OUT="$ROOT/.build-fuzz"
mkdir -p "$OUT/crashes" "$OUT/corpus"
CC="${CC:-clang}"
command -v "$CC" >/dev/null || { echo "fuzz: $CC is missing (the Swift toolchain ships clang)" >&2; exit 2; }

# Every message a peer may send: the envelope's and each request type, from the generated headers.
descriptors=$(grep -ho 'extern const ProtobufCMessageDescriptor [a-z0-9_]*__descriptor' \
    "$ROOT"/Sources/VPPProtoC/include/vpp/rpc/v1/*.h "$ROOT"/Sources/VPPProtoC/include/vpp/v1/*.h \
    | awk '{print $4}' | grep -E '(client_frame|__call|__hello|__cancel|__ping|_request)__descriptor$' | sort)
count=$(echo "$descriptors" | wc -l)
{
    echo '// Written by Scripts/fuzz.sh from the generated headers.'
    echo '#include "VPPProtoC.h"'
    echo 'const ProtobufCMessageDescriptor *const vpp_fuzz_descriptors[] = {'
    for d in $descriptors; do echo "    &$d,"; done
    echo '};'
    echo "const unsigned vpp_fuzz_descriptor_count = $count;"
} >"$OUT/descriptors.c"

"$CC" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$ROOT/Sources/VPPProtoC/include" \
    "$ROOT/Tests/Fuzz/fuzz_decode.c" "$OUT/descriptors.c" "$ROOT"/Sources/VPPProtoC/vpp/rpc/v1/*.c "$ROOT"/Sources/VPPProtoC/vpp/v1/*.c \
    -lprotobuf-c -o "$OUT/fuzz_decode" >"$OUT/build.log" 2>&1 \
    || { tail -20 "$OUT/build.log" >&2; echo "fuzz: the harness did not build" >&2; exit 1; }

# Seeds: an empty message of every type, and valid ClientFrames (a Hello; a Call of Ping with metadata).
for i in $(seq 0 $((count - 1))); do printf "$(printf '\\%03o' "$i")" >"$OUT/corpus/empty-$i"; done
frame=$(echo "$descriptors" | grep -n 'client_frame__descriptor' | cut -d: -f1)
frame=$((frame - 1))
octal=$(printf '\\%03o' "$frame")
printf "${octal}\x0a\x10\x0a\x06secret\x12\x04test\x18\x01" >"$OUT/corpus/hello"
printf "${octal}\x12\x2b\x08\x07\x12\x1d/vpp.v1.SystemService/Ping\x22\x06\x0a\x01k\x12\x01v\x2a\x00" >"$OUT/corpus/call-ping"

# run_fuzzer LABEL BINARY MAX_LEN NAME: runs a libFuzzer binary for SECONDS_TO_RUN on corpus $OUT/corpus$NAME, crashes
# in $OUT/crashes$NAME/, its log in $OUT/fuzz$NAME.log; prints its figures, or the log's end and fails on a crash.
run_fuzzer() {
    local label=$1 binary=$2 max_len=$3 name=$4
    "$binary" -max_total_time="$SECONDS_TO_RUN" -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$OUT/crashes$name/" -print_final_stats=1 "$OUT/corpus$name" 2>"$OUT/fuzz$name.log" \
        || { tail -40 "$OUT/fuzz$name.log" >&2; echo "$label: a crash or leak; the input is in $OUT/crashes$name/" >&2; exit 1; }
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$OUT/fuzz$name.log" | sed "s/^/$label: /"
}

echo "==> Fuzzing $count message types for ${SECONDS_TO_RUN}s"
run_fuzzer fuzz "$OUT/fuzz_decode" 65536 ""

[[ ${VPP_FUZZ_SWIFT:-1} == 0 ]] && exit 0
echo "==> Building the Swift frame fuzzer (vpp-fuzz-frames, instrumented)"
mkdir -p "$OUT/crashes-swift" "$OUT/corpus-swift"
(cd "$ROOT" && swift build --scratch-path "$OUT/swift" --product vpp-fuzz-frames \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DVPP_LIBFUZZER >"$OUT/swift-build.log" 2>&1) \
    || { tail -20 "$OUT/swift-build.log" >&2; echo "fuzz: the Swift fuzzer did not build" >&2; exit 1; }
# Seeds (first byte: how the stream is cut): a Hello then a Call of Ping, one frame each.
printf '\x07\x00\x00\x00\x12\x0a\x10\x0a\x06secret\x12\x04test\x18\x01\x00\x00\x00\x2d\x12\x2b\x08\x07\x12\x1d/vpp.v1.SystemService/Ping\x22\x06\x0a\x01k\x12\x01v\x2a\x00' \
    >"$OUT/corpus-swift/hello-call"
printf '\x01\x00\x00\x00\x00' >"$OUT/corpus-swift/empty-frame"
echo "==> Fuzzing the frame decoder, the envelope and the connection state machine for ${SECONDS_TO_RUN}s"
run_fuzzer "fuzz (swift)" "$OUT/swift/debug/vpp-fuzz-frames" 262144 -swift
