public import ArgumentParser
import Foundation
import Logging
import VPPLogKeys
import VPPPostgres
import VPPStorage

/// `vppd`: the VPP License Server.
public struct VPPDCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vppd",
        abstract: "The VPP License Server: Apple Volume Purchase Program licenses for many organisations, over RPC.",
        discussion: """
            Every setting can be a flag, an environment variable (VPP_…) or a line of the config file; flags win over \
            the environment, which wins over the file. `vppd serve --help` lists them all with their defaults.

            With no database URL, vppd runs its own PostgreSQL cluster in --data-dir (as the `postgres` user when \
            started as root).

            First start: create an operator key with `vppd admin create-operator-key`, or set \
            VPP_BOOTSTRAP_OPERATOR_KEY before the first start.
            """,
        subcommands: [Serve.self, Migrate.self, Admin.self, Config.self],
        defaultSubcommand: Serve.self
    )

    public init() {}

    /// Parses the command line and runs the chosen command. (argument-parser's own async `main()` cannot be picked
    /// from top-level code reliably, and its existential `run()` call may dispatch to the synchronous requirement,
    /// which only prints help; a protocol of our own with one async entry point leaves no ambiguity.)
    public static func runMain() async {
        do {
            var command = try Self.parseAsRoot()
            if let subcommand = command as? any VPPDSubcommand {
                try await subcommand.execute()
            } else {
                try command.run()
            }
        } catch {
            Self.exit(withError: error)
        }
    }
}

/// A vppd command with work to do.
protocol VPPDSubcommand: ParsableCommand {
    func execute() async throws
}

extension VPPDCommand {
    /// Runs the server until SIGTERM or SIGINT.
    struct Serve: VPPDSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the server (the default command).",
            discussion: "Example: vppd serve --host 0.0.0.0 --port 7443 --database-url postgres://vpp@db/vpp"
        )

        @OptionGroup var settings: SettingOptions

        func execute() async throws {
            let resolved = try self.settings.resolve()
            try await Daemon(settings: resolved).run()
        }
    }

    /// Brings the schemas up to date, or shows their versions.
    struct Migrate: VPPDSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Bring the control schema and every tenant schema up to date, or show their versions.",
            discussion: "Example: vppd migrate --status --database-url postgres://vpp@db/vpp"
        )

        @Flag(help: "Only show the schema versions; change nothing.")
        var status = false

        @OptionGroup var settings: SettingOptions

        func execute() async throws {
            try await withAdminStorage(self.settings, migrate: !self.status) { storage in
                let state = try await storage.migrator.status()
                print("control schema: version \(state.controlVersion) of \(state.latestControlVersion)")
                print(
                    "tenant schemas: \(state.tenants.count), \(state.tenantsBehind) behind version \(state.latestTenantVersion)"
                )
                for tenant in state.tenants where tenant.version < state.latestTenantVersion {
                    print(
                        "  \(tenant.tenantID.uuidString.lowercased())  \(tenant.schemaName)  version \(tenant.version)"
                    )
                }
            }
        }
    }

    struct Admin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Administration that needs no running server.",
            subcommands: [CreateOperatorKey.self, CreateTenant.self]
        )
    }

    /// Creates an operator key directly in the database: how the very first key comes to be.
    struct CreateOperatorKey: VPPDSubcommand {
        static let configuration = CommandConfiguration(
            commandName: "create-operator-key",
            abstract: "Create an operator API key and print it once.",
            discussion: """
                The key is printed on standard output and stored only as a hash: keep it. Migrates the schemas first \
                if needed. Example: vppd admin create-operator-key --name "first operator"
                """
        )

        @Option(help: "A name to recognise the key by.")
        var name: String = "operator"

        @OptionGroup var settings: SettingOptions

        func execute() async throws {
            try await withAdminStorage(self.settings, migrate: true) { storage in
                let (key, secret) = try await storage.apiKeys.create(kind: .operator, tenantID: nil, name: self.name)
                FileHandle.standardError.write(
                    Data(
                        "Created operator key \(key.id.uuidString.lowercased()) (\(key.name)). It is shown once:\n".utf8
                    )
                )
                print(secret)
            }
        }
    }

    /// Creates a tenant and a key for it directly in the database (the local run's demo tenant; scripts).
    struct CreateTenant: VPPDSubcommand {
        static let configuration = CommandConfiguration(
            commandName: "create-tenant",
            abstract: "Create a tenant with a tenant API key; print the tenant's id and the key.",
            discussion: """
                Prints two lines on standard output: the tenant id, then the key (shown once). Operators normally use \
                the OperatorService over RPC; this is for scripts and the local run. \
                Example: vppd admin create-tenant --name "Demo School" --key-name demo
                """
        )

        @Option(help: "The tenant's display name.")
        var name: String

        @Option(help: "A name for the tenant's first API key.")
        var keyName: String = "admin"

        @OptionGroup var settings: SettingOptions

        func execute() async throws {
            try await withAdminStorage(self.settings, migrate: true) { storage in
                let tenant = try await storage.tenants.create(
                    displayName: self.name,
                    tokenLimit: nil,
                    organizationCreatedAt: nil,
                    deviceGroupAssignment: false
                )
                let (_, secret) = try await storage.apiKeys.create(
                    kind: .tenant,
                    tenantID: tenant.id,
                    name: self.keyName
                )
                print(tenant.id.uuidString.lowercased())
                print(secret)
            }
        }
    }

    /// Prints the settings in force.
    struct Config: VPPDSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the settings in force and where each one comes from (secrets hidden).",
            discussion: "Example: VPP_PORT=9000 vppd config --config /etc/vpp/vppd.env"
        )

        @OptionGroup var settings: SettingOptions

        func execute() async throws {
            print(try self.settings.resolve().describe())
        }
    }
}

/// Runs an admin command's work against the database the settings name (starting the embedded cluster if needed),
/// optionally migrating first, and always releases the pool and the cluster afterwards.
private func withAdminStorage(
    _ options: SettingOptions,
    migrate: Bool,
    _ body: (Storage) async throws -> Void
) async throws {
    let resolved = try options.resolve()
    let logger = Daemon.makeLogger(resolved)
    let database = try await DatabaseRuntime.start(settings: resolved, logger: logger)
    let pool = PostgresPool(configuration: database.configuration, logger: logger)
    var failure: (any Error)?
    do {
        let storage = Storage(pool: pool, logger: logger)
        if migrate {
            // Timed as at `serve`'s start-up, so the two compare (Benchmarks/tenants.sh reads took=): the command's
            // own run time also holds the cluster's start and its shutdown checkpoint.
            let started = ContinuousClock.now
            try await storage.migrate(concurrency: try resolved.int(.migrationConcurrency, in: 1...64))
            logger.info("Schemas are up to date", metadata: [LogKey.took: "\(ContinuousClock.now - started)"])
        }
        try await body(storage)
    } catch {
        failure = error
    }
    await pool.shutdown()
    await database.stop(logger: logger)
    if let failure { throw failure }
}
