public import ArgumentParser

/// `vpp-load`: drives a vppd RPC port with a call mix and reports throughput and latency percentiles.
public struct VPPLoadCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vpp-load",
        abstract: "Load a VPP License Server's RPC port and report throughput and latency.",
        discussion: """
            Sends load only to this machine (loopback) unless --allow-remote is given. Every run is bounded by a \
            call count or a duration and stops by itself. --json prints one JSON object with stable field names.
            """,
        subcommands: [
            PingCommand.self, CountsCommand.self, MixCommand.self, IdleCommand.self, EchoServerCommand.self,
            CreateTenantsCommand.self, QueueCommand.self, SyncCommand.self, AssignCommand.self, AbuseCommand.self,
        ]
    )

    public init() {}

    /// Parses the command line and runs the chosen subcommand. (As in vppd: a protocol of our own with one async
    /// entry point, because argument-parser's existential `run()` may dispatch to the synchronous requirement.)
    public static func runMain(_ arguments: [String]? = nil) async {
        do {
            var command = try Self.parseAsRoot(arguments)
            if let subcommand = command as? any LoadSubcommand {
                try await subcommand.execute()
            } else {
                try command.run()
            }
        } catch {
            Self.exit(withError: error)
        }
    }
}

/// A vpp-load subcommand: parsed by argument-parser, run by `VPPLoadCommand.runMain`.
protocol LoadSubcommand: ParsableCommand {
    func execute() async throws
}
