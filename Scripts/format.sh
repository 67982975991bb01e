#!/usr/bin/env bash
# Formats, or with --check lints, every hand-written Swift file with `swift format` and the rules in .swift-format
# (120 columns). The generated code (Sources/VPPProto/Generated, Sources/VPPProtoC) is the generator's business.
#
# Usage: Scripts/format.sh           rewrite the files in place
#        Scripts/format.sh --check   exit 1 and name each finding (Deploy/test.sh runs this)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mapfile -t files < <(git ls-files '*.swift' | grep -v '^Sources/VPPProto/Generated/\|^Sources/VPPProtoC/')
case "${1:-}" in
    "") swift format format --in-place "${files[@]}" ;;
    --check)
        if ! swift format lint --strict "${files[@]}"; then
            echo "format: the files above do not follow .swift-format; run Scripts/format.sh to fix them" >&2
            exit 1
        fi
        echo "format: ${#files[@]} files follow .swift-format"
        ;;
    *)
        echo "usage: $0 [--check]" >&2
        exit 1
        ;;
esac
