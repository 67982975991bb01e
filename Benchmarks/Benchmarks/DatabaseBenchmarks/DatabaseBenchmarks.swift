import Benchmark
import Foundation
import Logging
import VPPPostgres

/// The read path of a tenant call through libpq, against the database in VPP_BENCH_DATABASE_URL (a scratch database:
/// it creates and drops the schema `vpp_bench_read`). What GetLicenseCounts does in the database, minus the RPC:
///   - the bare read: one prepared SELECT of one row by primary key, autocommit (pgbench -S's shape);
///   - the tenant-scoped read: BEGIN, SET LOCAL ROLE and search_path, the same SELECT, COMMIT
///     (`Storage.withTenant`, what GetLicenseCounts did before it was pipelined);
///   - the same in one pipelined round trip (`PostgresPool.pipelinedRead`, what `Storage.readInTenant` does).
/// Without the variable the suite registers nothing and says so.
let benchmarks: @Sendable () -> Void = {
    guard let url = ProcessInfo.processInfo.environment["VPP_BENCH_DATABASE_URL"], !url.isEmpty else {
        print(
            "DatabaseBenchmarks: skipped. Set VPP_BENCH_DATABASE_URL=postgres://user@127.0.0.1:PORT/scratch (a database "
                + "this may write a schema vpp_bench_read to) to run the database read path."
        )
        return
    }
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .one,
        maxDuration: .seconds(5)
    )
    var configuration = try! PostgresConfiguration(url: url)
    configuration.poolSize = 1
    let pool = PostgresPool(configuration: configuration, logger: Logger(label: "bench"))
    let id = UUID(uuidString: "00000000-0000-4000-8000-000000000042")!

    Benchmark.setup = {
        try await pool.simpleQuery(
            """
            DROP SCHEMA IF EXISTS vpp_bench_read CASCADE;
            CREATE SCHEMA vpp_bench_read;
            CREATE TABLE vpp_bench_read.assets (id uuid PRIMARY KEY, total_count integer NOT NULL,
                                                assigned_count integer NOT NULL, name text NOT NULL);
            INSERT INTO vpp_bench_read.assets
            SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 100, n % 100, 'App ' || n
            FROM generate_series(1, 1000) AS n;
            ANALYZE vpp_bench_read.assets;
            """
        )
    }
    Benchmark.teardown = {
        try await pool.simpleQuery("DROP SCHEMA IF EXISTS vpp_bench_read CASCADE")
        await pool.shutdown()
    }

    Benchmark("Read one row by key, autocommit (prepared)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(
                try await pool.query(
                    "SELECT total_count, assigned_count, name FROM vpp_bench_read.assets WHERE id = \(id)"
                )
            )
        }
    }

    Benchmark("Read one row by key in a scoped transaction (BEGIN, SET LOCAL, SELECT, COMMIT)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(
                try await pool.transaction { transaction in
                    try await transaction.simpleQuery("SET LOCAL search_path TO vpp_bench_read")
                    return try await transaction.query(
                        "SELECT total_count, assigned_count, name FROM assets WHERE id = \(id)"
                    )
                }
            )
        }
    }

    Benchmark("Read one row by key in a scoped transaction, pipelined (one round trip)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(
                try await pool.pipelinedRead(
                    setup: ["SET LOCAL search_path TO vpp_bench_read"],
                    "SELECT total_count, assigned_count, name FROM assets WHERE id = \(id)"
                )
            )
        }
    }
}
