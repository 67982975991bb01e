#!/usr/bin/env python3
"""Tests of Scripts/check-boundaries.py on small made-up packages: each rule, broken once, is caught."""
import importlib.util
import os
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("check_boundaries", os.path.join(HERE, "check-boundaries.py"))
checker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(checker)

PACKAGE = """
// swift-tools-version: 6.0
import PackageDescription
let package = Package(
    name: "made-up",
    targets: [
        .target(name: "VPPProto", dependencies: ["VPPProtoC"]),  // a comment with "Quoted" names
        .target(name: "VPPProtoC"),
        .target(name: "VPPWire", dependencies: ["VPPProto", .product(name: "NIOCore", package: "swift-nio")]),
        .target(name: "VPPServer", dependencies: [
            "VPPWire",
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        .testTarget(name: "VPPWireTests", dependencies: ["VPPWire"]),
    ]
)
"""

FILES = {
    "Sources/VPPProto/A.swift": "import Foundation\n@preconcurrency internal import VPPProtoC\n",
    "Sources/VPPProtoC/a.c": "int a;\n",
    "Sources/VPPWire/A.swift": "public import NIOCore\nimport VPPProto\n",
    "Sources/VPPServer/A.swift": "import VPPWire\nimport CoreMetrics\n#if canImport(Glibc)\nimport Glibc\n#endif\n",
    "Tests/VPPWireTests/A.swift": "import Testing\n@testable import VPPWire\n",
}


class CheckBoundariesTests(unittest.TestCase):
    def package(self, package=PACKAGE, files=None, extra=None):
        directory = tempfile.mkdtemp(prefix="boundaries-")
        contents = dict(FILES if files is None else files)
        contents.update(extra or {})
        contents["Package.swift"] = package
        for path, text in contents.items():
            full = os.path.join(directory, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as handle:
                handle.write(text)
        return checker.check(directory)

    def test_a_package_that_keeps_its_boundaries_passes(self):
        self.assertEqual(self.package(), [])

    def test_an_import_that_is_not_a_declared_dependency_fails(self):
        findings = self.package(extra={"Sources/VPPWire/B.swift": "import VPPProtoC\n"})
        self.assertTrue(any("VPPWire imports VPPProtoC, which is not among its dependencies" in f for f in findings), findings)

    def test_a_dependency_nothing_imports_fails(self):
        findings = self.package(package=PACKAGE.replace('dependencies: ["VPPWire"]', 'dependencies: ["VPPWire", "VPPProto"]'))
        self.assertTrue(any("VPPWireTests lists VPPProto, which none of its files import" in f for f in findings), findings)

    def test_the_wire_module_importing_sockets_is_forbidden(self):
        package = PACKAGE.replace('.product(name: "NIOCore", package: "swift-nio")]',
                                  '.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]')
        findings = self.package(package=package, extra={"Sources/VPPWire/B.swift": "import NIOPosix\n"})
        self.assertTrue(any("VPPWire -> NIOPosix is forbidden" in f for f in findings), findings)

    def test_only_the_proto_module_may_use_protobuf_c(self):
        package = PACKAGE.replace('dependencies: ["VPPProto", .product', 'dependencies: ["VPPProto", "VPPProtoC", .product')
        findings = self.package(package=package, extra={"Sources/VPPWire/B.swift": "import VPPProtoC\n"})
        self.assertTrue(any("VPPWire -> VPPProtoC is forbidden" in f for f in findings), findings)

    def test_the_load_generator_drives_the_rpc_port_only(self):
        package = PACKAGE.replace(
            '.testTarget(name: "VPPWireTests"',
            '.target(name: "VPPPostgres"), .target(name: "AppleVPPSimulator"),\n'
            '        .target(name: "VPPLoadKit", dependencies: ["VPPWire", "VPPPostgres", "AppleVPPSimulator"]),\n'
            '        .target(name: "VPPBenchKit", dependencies: ["VPPLoadKit", "VPPPostgres", "AppleVPPSimulator"]),\n'
            '        .testTarget(name: "VPPWireTests"',
        )
        both = "import VPPPostgres\nimport AppleVPPSimulator\n"
        findings = self.package(package=package, extra={
            "Sources/VPPLoadKit/A.swift": "import VPPWire\n" + both,
            "Sources/VPPBenchKit/A.swift": "import VPPLoadKit\n" + both,
        })
        self.assertTrue(any("VPPLoadKit -> VPPPostgres is forbidden" in f for f in findings), findings)
        self.assertTrue(any("VPPLoadKit -> AppleVPPSimulator is forbidden" in f for f in findings), findings)
        self.assertFalse(any(f.startswith("VPPBenchKit ->") for f in findings), findings)

    def test_an_edge_up_the_layers_fails(self):
        package = PACKAGE.replace('dependencies: ["VPPProto", .product', 'dependencies: ["VPPProto", "VPPServer", .product')
        findings = self.package(package=package, extra={"Sources/VPPWire/B.swift": "import VPPServer\n"})
        self.assertTrue(any("VPPWire (layer 3) depends on VPPServer (layer 4)" in f for f in findings), findings)

    def test_a_module_without_a_layer_fails(self):
        package = PACKAGE.replace('.target(name: "VPPProtoC"),', '.target(name: "VPPProtoC"),\n.target(name: "Stray"),')
        findings = self.package(package=package, extra={"Sources/Stray/A.swift": "import Foundation\n"})
        self.assertTrue(any("Stray has no layer" in f for f in findings), findings)

    def test_a_string_literal_log_key_fails(self):
        findings = self.package(extra={"Sources/VPPWire/B.swift": (
            'func f(logger: Logger) {\n'
            '    logger.info("x", metadata: [LogKey.error: "e", "tenant": "t"])\n'
            '    logger[metadataKey: "peer"] = "p"\n'
            '}\n'
        )})
        keys = sorted(f.split('"')[1] for f in findings if "is a string literal" in f)
        self.assertEqual(keys, ["peer", "tenant"], findings)
        self.assertTrue(any("B.swift:2:" in f for f in findings), findings)

    def test_a_layer_table_in_the_docs_that_disagrees_with_the_layers_fails(self):
        rows = "".join(
            f"| {n} | {', '.join(sorted(layer))} |\n" for n, layer in enumerate(checker.LAYERS)
        )
        agreeing = "| layer | modules |\n|---|---|\n" + rows
        self.assertEqual(self.package(extra={"docs/architecture.md": agreeing}), [])
        # VPPWire drawn a layer too low; a remark in parentheses may name any module.
        layers = [set(layer) for layer in checker.LAYERS]
        layers[3].discard("VPPWire")
        layers[2].add("VPPWire")
        wrong = "| layer | modules |\n|---|---|\n" + "".join(
            f"| {n} | {', '.join(sorted(layer))}{' (VPPProto below)' if n == 3 else ''} |\n"
            for n, layer in enumerate(layers)
        )
        findings = self.package(extra={"docs/architecture.md": wrong})
        self.assertTrue(any("layer 2 lists ['VPPProto', 'VPPWire']" in f for f in findings), findings)
        self.assertTrue(any("layer 3 lists [], LAYERS has ['VPPWire']" in f for f in findings), findings)
        self.assertEqual(len(findings), 2, findings)

    def test_the_real_package_passes(self):
        self.assertEqual(checker.check(os.path.join(HERE, "..")), [])


if __name__ == "__main__":
    unittest.main()
