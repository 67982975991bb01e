#!/usr/bin/env bash
# Prints vppd's settings as the Markdown table of docs/configuration.md, read from Sources/VPPDaemon/Settings.swift
# (the `Setting` enum: its cases, `defaultValue` and `summary`), so the table and `vppd --help` say the same.
#
#   Scripts/settings-table.sh            # print the table
#   Scripts/settings-table.sh --check    # exit 1 if docs/configuration.md lacks a row printed here
#
# A reading of the Swift text, not of the compiled program: it expects the layout Settings.swift has (one `case` per
# line in the enum, `case .name: "value"` in the switches, a summary string on the case line or the next one).
set -euo pipefail
cd "$(dirname "$0")/.."

table="$(python3 - Sources/VPPDaemon/Settings.swift <<'PY'
import re, sys

text = open(sys.argv[1], encoding="utf-8").read()

def block(start):
    """The text of the `{ ... }` body that follows the first line matching `start`."""
    match = re.search(start, text)
    if not match:
        sys.exit(f"settings-table: cannot find {start!r} in Settings.swift")
    i = text.index("{", match.end())
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    sys.exit("settings-table: unbalanced braces")

enum = block(r"public enum Setting\b")
cases = []  # (swift name, flag)
for name, raw in re.findall(r"^\s*case (\w+)(?: = \"([^\"]+)\")?\s*$", enum, re.M):
    cases.append((name, raw or name))

def switch(var):
    body = block(r"public var " + var + r"\b")
    values = {}
    for name, value in re.findall(r"case \.(\w+):\s*\n?\s*\"((?:[^\"\\]|\\.)*)\"", body):
        values[name] = value.replace('\\"', '"')
    return values

defaults, summaries = switch("defaultValue"), switch("summary")
secrets = set(re.findall(r"self == \.(\w+)", block(r"public var isSecret\b")))

print("| flag | environment | default | meaning |")
print("|---|---|---|---|")
for name, flag in cases:
    if name not in defaults or name not in summaries:
        sys.exit(f"settings-table: {name} has no default or no summary")
    env = "VPP_" + flag.upper().replace("-", "_")
    default = f"`{defaults[name]}`" if defaults[name] else "none"
    meaning = summaries[name].replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    if name in secrets:
        meaning += " **Secret**: hidden by `vppd config`."
    print(f"| `--{flag}` | `{env}` | {default} | {meaning} |")
PY
)"

if [ "${1:-}" = "--check" ]; then
    missing=0
    while IFS= read -r row; do
        case "$row" in "| \`--"*) ;; *) continue ;; esac
        if ! grep -qxF -- "$row" docs/configuration.md; then
            echo "docs/configuration.md lacks or differs in: $row" >&2
            missing=1
        fi
    done <<<"$table"
    exit "$missing"
fi
printf '%s\n' "$table"
