#!/usr/bin/env python3
"""The module boundaries of the package, checked (issue 17).

Reads Package.swift (every target and its direct dependencies) and the `import` lines of every Swift file under
Sources/<target>/ and Tests/<target>/, and fails when:

  1. a file imports a module its target does not list as a direct dependency (SwiftPM lets a target import what its
     dependencies bring along; here every edge is written down where it is used);
  2. a target lists a dependency that none of its files import (the graph says no more than the code does);
  3. an edge goes against the layers below (a module depends only on modules of lower layers), or is one of the
     forbidden edges (`FORBIDDEN`), e.g. VPPWire importing NIOPosix, or anything but VPPProto importing protobuf-c;
  4. a log line's metadata key is a string literal rather than a `LogKey` (Sources/VPPLogKeys), outside the modules
     that are libraries of their own (`OWN_LOG_KEYS`);
  5. docs/architecture.md's layer table names other modules per layer than `LAYERS` (the picture is the code's).

Usage: Scripts/check-boundaries.py [package-directory]   (exit 1 and one line per finding when a rule is broken)
Deploy/test.sh runs it; Scripts/test_check_boundaries.py tests it on small made-up packages.
"""
import os
import re
import sys

# Modules of the toolchain and the platform: importable without a dependency.
SYSTEM = {"Foundation", "FoundationEssentials", "Dispatch", "Glibc", "Musl", "Darwin", "Synchronization", "Testing",
          "XCTest", "_Concurrency", "Android", "WinSDK"}

# A product of a package dependency and the modules importing it makes available.
PRODUCT_MODULES = {"Metrics": {"Metrics", "CoreMetrics"}}

# The layers, lowest first. A target may depend only on targets of a lower layer (executables, tests and the test
# helpers sit on top). Targets of the package not listed here are refused, so a new module takes its place on purpose.
LAYERS = [
    {"CProtobufC", "CLibPQ"},
    {"VPPProtoC", "VPPLogKeys", "VPPClock", "VPPTestSupport"},
    {"VPPProto", "VPPLicensing", "VPPPostgres", "AppleVPP"},
    {"VPPWire", "VPPStorage", "VPPJobs", "AppleVPPSimulator"},
    {"VPPServer", "VPPClient"},
    {"VPPSync", "VPPLoadKit"},
    {"VPPPush", "VPPTokens"},
    {"VPPNotifications"},
    {"VPPServices"},
    {"VPPDaemon", "VPPCtlKit", "VPPBenchKit"},
    {"VPPTesting"},
]
TOP = len(LAYERS)  # executables and test targets

# Edges refused whatever the layers say: (importer pattern, imported module, why).
FORBIDDEN = [
    (r"^VPPWire$", "NIOPosix|NIOSSL", "the wire protocol has no I/O: sockets and TLS belong to VPPServer and VPPClient"),
    (r"^(?!VPPProto$|VPPProtoC$).*", "CProtobufC", "only VPPProto speaks protobuf-c; everything else uses its types"),
    (r"^(?!VPPProto$).*", "VPPProtoC", "only VPPProto bridges the generated C code"),
    (r"^(?!VPPPostgres$).*", "CLibPQ", "only VPPPostgres calls libpq"),
    (r"^VPPLicensing$", ".*", "the ledger's state machine is a value type with no dependencies"),
    (r"^VPPLogKeys$", ".*", "the log keys are names only"),
    (r"^VPPClock$", "VPP.*|NIOCore|NIOPosix", "the clock is time only"),
    (r"^VPPJobs$", "VPP(Storage|Sync|Services)", "the job queue and its worker need only PostgreSQL"),
    (r"^VPPServer$", "VPP(Storage|Postgres|Sync|Jobs|Services)", "the RPC server knows nothing of storage or services"),
    (r"^VPPClient$", "VPP(Server|Storage|Postgres|Services)", "the client library is what a client links: no server"),
    (r"^(AppleVPP|AppleVPPSimulator)$", "VPP.*", "Apple's API and its simulator know nothing of this service"),
    (r"^(?!.*Tests$)(?!vpp-)(?!VPPTesting$).*", "VPPTesting|VPPTestSupport",
     "test helpers are for tests (and test-only executables) only"),
    (r"^VPPTestSupport$", ".*", "the light test helpers have no dependencies, so the fastest tests link nothing else"),
    (r"^VPPLoadKit$", "VPP(Storage|Postgres|Jobs|Sync|Services)|AppleVPPSimulator|AppleVPP",
     "the load generator drives the RPC port only: what needs the database is VPPBenchKit's"),
    (r"^(?!VPPBenchKit$|vpp-apple-sim$|.*Tests$|VPPTesting$).*", "AppleVPPSimulator",
     "the simulator is for tests, the local run and the load tool's benchmarks, never the product"),
]

# Modules that keep their own log keys: Apple's API and its simulator know nothing of this service.
OWN_LOG_KEYS = {"AppleVPP", "AppleVPPSimulator", "vpp-apple-sim", "VPPLogKeys"}
METADATA_LITERAL = re.compile(r"(?:metadata:|Logger\.Metadata\s*=)\s*\[")
LITERAL_KEY = re.compile(r'"([A-Za-z_][A-Za-z_0-9]*)"\s*:')

IMPORT = re.compile(
    r"^\s*(?:@[A-Za-z_]+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?import\s+"
    r"(?:(?:struct|class|enum|func|protocol|typealias|var|let)\s+)?([A-Za-z_][A-Za-z_0-9]*)"
)


def matching_bracket(text, start):
    """The index just past the bracket that closes the one at `start`."""
    depth = 0
    in_string = False
    i = start
    while i < len(text):
        c = text[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced brackets in Package.swift")


def strip_comments(text):
    return re.sub(r"//[^\n]*", "", text)


def parse_package(text):
    """{target: (kind, [dependency names])}: a product dependency by its product name."""
    text = strip_comments(text)
    targets = {}
    for match in re.finditer(r"\.(target|executableTarget|testTarget|systemLibrary)\(", text):
        end = matching_bracket(text, match.end() - 1)
        body = text[match.end():end - 1]
        name = re.search(r'name:\s*"([^"]+)"', body).group(1)
        dependencies = []
        found = re.search(r"dependencies:\s*\[", body)
        if found:
            list_end = matching_bracket(body, found.end() - 1)
            deps = body[found.end():list_end - 1]
            for product in re.finditer(r'\.product\(\s*name:\s*"([^"]+)"', deps):
                dependencies.append(product.group(1))
            deps = re.sub(r"\.product\([^)]*\)", "", deps)
            dependencies += re.findall(r'"([^"]+)"', deps)
        targets[name] = (match.group(1), dependencies)
    return targets


def swift_sources(directory):
    """[(path, text)] of the Swift files under `directory`, in a stable order."""
    sources = []
    for root, _, files in sorted(os.walk(directory)):
        for file in sorted(files):
            if file.endswith(".swift"):
                path = os.path.join(root, file)
                with open(path, encoding="utf-8") as handle:
                    sources.append((path, handle.read()))
    return sources


def imports_of(sources):
    """{module: first file:line importing it} over `sources`."""
    found = {}
    for path, text in sources:
        for number, line in enumerate(text.split("\n"), 1):
            match = IMPORT.match(line)
            if match:
                found.setdefault(match.group(1), f"{path}:{number}")
    return found


def literal_log_keys(sources):
    """file:line and key of each string literal used as a log metadata key in `sources`."""
    found = []
    for path, text in sources:
        spans = [(m.start(), m.group(1)) for m in re.finditer(r'metadataKey:\s*"([^"]*)"', text)]
        spans += [(m.start(), m.group(1)) for m in re.finditer(r'metadata\[\s*"([^"]*)"\s*\]', text)]
        for match in METADATA_LITERAL.finditer(text):
            end = matching_bracket(text, match.end() - 1)
            spans += [(match.end() + k.start(), k.group(1)) for k in LITERAL_KEY.finditer(text[match.end():end])]
        for offset, key in sorted(spans):
            found.append((f"{path}:{text.count(chr(10), 0, offset) + 1}", key))
    return found


def layer_of(target, kind):
    if kind in ("executableTarget", "testTarget"):
        return TOP
    for index, layer in enumerate(LAYERS):
        if target in layer:
            return index
    return None


def check(package_dir):
    with open(os.path.join(package_dir, "Package.swift"), encoding="utf-8") as handle:
        targets = parse_package(handle.read())
    findings = []
    for target, (kind, dependencies) in sorted(targets.items()):
        if kind == "systemLibrary":
            continue
        folder = os.path.join(package_dir, "Tests" if kind == "testTarget" else "Sources", target)
        sources = swift_sources(folder)
        imported = imports_of(sources)
        provided = set()
        for dependency in dependencies:
            provided |= PRODUCT_MODULES.get(dependency, {dependency})
        for module, where in sorted(imported.items()):
            if module in SYSTEM or module == target:
                continue
            if module not in provided:
                findings.append(f"{where}: {target} imports {module}, which is not among its dependencies in Package.swift")
        c_target = not sources
        for dependency in dependencies:
            modules = PRODUCT_MODULES.get(dependency, {dependency})
            if not c_target and not modules & set(imported):
                findings.append(f"Package.swift: {target} lists {dependency}, which none of its files import")
        layer = layer_of(target, kind)
        if layer is None:
            findings.append(f"Package.swift: {target} has no layer in Scripts/check-boundaries.py (LAYERS): give it one")
            continue
        for dependency in dependencies:
            if dependency not in targets:
                continue  # a product of another package
            dependency_layer = layer_of(dependency, targets[dependency][0])
            if dependency_layer is not None and dependency_layer >= layer:
                findings.append(
                    f"Package.swift: {target} (layer {layer}) depends on {dependency} (layer {dependency_layer}):"
                    " a module depends only on lower layers"
                )
        if kind != "testTarget" and target not in OWN_LOG_KEYS:
            for where, key in literal_log_keys(sources):
                findings.append(f'{where}: the log metadata key "{key}" is a string literal: use (or add) a LogKey')
        for importer, imported_pattern, why in FORBIDDEN:
            if not re.match(importer, target):
                continue
            for dependency in sorted(set(dependencies) | set(imported)):
                if dependency in SYSTEM or dependency == target:
                    continue
                if re.fullmatch(imported_pattern, dependency):
                    findings.append(f"{target} -> {dependency} is forbidden: {why}")
    findings += documented_layers(package_dir, targets)
    return findings


def documented_layers(package_dir, targets):
    """docs/architecture.md's layer table must say what LAYERS says: the picture is the code's."""
    path = os.path.join(package_dir, "docs", "architecture.md")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        rows = re.findall(r"^\| (\d+) \| (.*) \|$", handle.read(), re.M)
    if not rows:
        return ["docs/architecture.md: no layer table (| layer | modules |) to compare with LAYERS"]
    findings = []
    # The modules a row names, outside its parenthesised remarks ("VPPJobs (… on VPPPostgres alone)").
    documented = {
        int(layer): set(re.findall(r"\b[A-Za-z][A-Za-z0-9]*\b", re.sub(r"\([^)]*\)", "", text))) & set(targets)
        for layer, text in rows
    }
    for layer, modules in enumerate(LAYERS):
        listed = documented.get(layer, set())
        expected = modules & set(targets)
        if listed != expected:
            findings.append(
                f"docs/architecture.md: layer {layer} lists {sorted(listed)}, LAYERS has {sorted(expected)}"
            )
    return findings


def main():
    package_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    findings = check(package_dir)
    for finding in findings:
        print(finding)
    if findings:
        print(f"check-boundaries: {len(findings)} finding(s)", file=sys.stderr)
        return 1
    print("check-boundaries: every import is a declared dependency, and every edge goes down the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
