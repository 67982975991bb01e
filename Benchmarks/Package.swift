// swift-tools-version: 6.1
// The VPP License Server's micro-benchmarks (ordo-one/benchmark), a package of its own so that its dependencies never
// reach the product's build. Run from this folder: `swift package benchmark` (Benchmarks/README.md).
import PackageDescription

let package = Package(
    name: "vpp-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "vpp-license-server", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", exact: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // Frames and envelopes: the work every call does twice (request in, reply out), without I/O.
        .executableTarget(
            name: "WireBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "VPPWire", package: "vpp-license-server"),
                .product(name: "VPPProto", package: "vpp-license-server"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/WireBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The tenant-scoped read path through libpq, against a database given in VPP_BENCH_DATABASE_URL.
        .executableTarget(
            name: "DatabaseBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "VPPPostgres", package: "vpp-license-server"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/DatabaseBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
