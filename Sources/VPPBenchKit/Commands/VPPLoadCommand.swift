public import ArgumentParser
import VPPLoadKit

/// `vpp-load`: drives a vppd RPC port with a call mix and reports throughput and latency percentiles; its `queue`,
/// `sync` and `assign` subcommands time the job queue and the sync against PostgreSQL directly.
public struct VPPLoadCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vpp-load",
        abstract: "Load a VPP License Server's RPC port and report throughput and latency.",
        discussion: """
            Sends load only to this machine (loopback) unless --allow-remote is given. Every run is bounded by a \
            call count or a duration and stops by itself. --json prints one JSON object with stable field names.
            """,
        subcommands: [
            LoadKitSubcommands.ping, LoadKitSubcommands.counts, LoadKitSubcommands.mix, LoadKitSubcommands.idle,
            LoadKitSubcommands.echoServer, LoadKitSubcommands.createTenants, QueueCommand.self, SyncCommand.self,
            AssignCommand.self, NotifyLatencyCommand.self, LoadKitSubcommands.abuse,
        ]
    )

    public init() {}

    /// Parses the command line and runs the chosen subcommand: a `LoadSubcommand` (VPPLoadKit's or this module's),
    /// or a `TenantLoadSubcommand` with the preparer that stores its tenants in the database (`DatabaseLoadTenants`).
    public static func runMain(_ arguments: [String]? = nil) async {
        do {
            var command = try Self.parseAsRoot(arguments)
            if let subcommand = command as? any TenantLoadSubcommand {
                try await subcommand.execute(preparingTenantsWith: DatabaseLoadTenants())
            } else if let subcommand = command as? any LoadSubcommand {
                try await subcommand.execute()
            } else {
                try command.run()
            }
        } catch {
            Self.exit(withError: error)
        }
    }
}
