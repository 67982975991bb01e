import Foundation
public import VPPPostgres

/// A PostgreSQL server for tests: one per test process, and a fresh database per suite.
///
/// With `VPP_TEST_DATABASE_URL` set (a superuser, or a user allowed to create databases), that
/// server is used. Otherwise the first call starts an `EmbeddedPostgres` in a temporary directory
/// on a free port with fsync off; it is stopped and deleted when the process exits.
public enum TestPostgres {
    /// Creates an empty database with a unique name starting with `prefix` and returns a
    /// configuration for it. Suites that each use their own database can run in parallel.
    public static func makeDatabase(prefix: String = "test", poolSize: Int = 4) async throws -> PostgresConfiguration {
        let server = try await TestPostgresServer.shared.server()
        let sanitized = prefix.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }
        let name = String(sanitized.prefix(30)) + "_" + UUID().uuidString.prefix(8).lowercased()
        try await server.admin.simpleQuery("CREATE DATABASE \(try quoteIdentifier(name))")
        var configuration = server.admin.configuration.withDatabase(name)
        configuration.poolSize = poolSize
        configuration.applicationName = "vpp-tests"
        return configuration
    }

    /// A configuration for the server's maintenance database (`postgres`), as a superuser.
    public static func adminConfiguration() async throws -> PostgresConfiguration {
        try await TestPostgresServer.shared.server().admin.configuration
    }

    /// Starts a cluster of its own (for tests that stop or restart the server), in a temporary
    /// directory on a free port with fsync off. The caller stops it; it is also stopped and
    /// deleted when the process exits.
    public static func makeDedicatedCluster() async throws -> EmbeddedPostgres {
        let directory = try makeTemporaryDirectory()
        let cluster = try EmbeddedPostgres(
            options: .init(dataDirectory: directory + "/data", unsafeFastWrites: true, maxConnections: 50)
        )
        ClusterReaper.register(cluster, directory: directory)
        try await cluster.start()
        return cluster
    }

    static func makeTemporaryDirectory() throws -> String {
        // Under /tmp, not $TMPDIR: the path must be short (the Unix socket lives inside it) and,
        // when the tests run as root, traversable by the postgres user.
        let directory = "/tmp/vpp-pg-" + UUID().uuidString.prefix(12).lowercased()
        try FileManager.default.createDirectory(
            atPath: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o755]
        )
        return directory
    }
}

/// Starts the shared server once, on first use.
actor TestPostgresServer {
    static let shared = TestPostgresServer()

    struct Server: Sendable {
        var admin: PostgresPool
    }

    private var starting: Task<Server, any Error>?

    func server() async throws -> Server {
        if let starting { return try await starting.value }
        let task = Task { try await Self.start() }
        starting = task
        return try await task.value
    }

    private static func start() async throws -> Server {
        if let url = ProcessInfo.processInfo.environment["VPP_TEST_DATABASE_URL"], !url.isEmpty {
            return Server(admin: PostgresPool(configuration: adminSettings(try PostgresConfiguration(url: url))))
        }
        let directory = try TestPostgres.makeTemporaryDirectory()
        let cluster = try EmbeddedPostgres(
            options: .init(dataDirectory: directory + "/data", unsafeFastWrites: true, maxConnections: 1000)
        )
        ClusterReaper.register(cluster, directory: directory)
        try await cluster.start()
        return Server(admin: PostgresPool(configuration: adminSettings(cluster.configuration())))
    }

    /// Dozens of tests start at once and each creates a database (about 0.3 s each, serialized by
    /// the server); waiting for the admin pool is part of test setup, so it may take long.
    private static func adminSettings(_ configuration: PostgresConfiguration) -> PostgresConfiguration {
        var configuration = configuration
        configuration.poolSize = 4
        configuration.poolAcquireTimeout = .seconds(300)
        configuration.applicationName = "vpp-tests-admin"
        return configuration
    }
}

/// Stops and deletes the clusters this process started when it exits.
enum ClusterReaper {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var clusters: [(EmbeddedPostgres, String)] = []
    nonisolated(unsafe) private static var installed = false

    static func register(_ cluster: EmbeddedPostgres, directory: String) {
        lock.lock()
        defer { lock.unlock() }
        clusters.append((cluster, directory))
        if !installed {
            installed = true
            atexit { ClusterReaper.reapAll() }
        }
    }

    private static func reapAll() {
        lock.lock()
        let all = clusters
        clusters = []
        lock.unlock()
        for (cluster, directory) in all {
            cluster.stopImmediatelyBlocking()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}
