public import ArgumentParser

/// A vpp-load subcommand: parsed by argument-parser, run by `VPPLoadCommand.runMain` (VPPBenchKit). (As in vppd: a
/// protocol of our own with one async entry point, because argument-parser's existential `run()` may dispatch to the
/// synchronous requirement.)
public protocol LoadSubcommand: ParsableCommand {
    func execute() async throws
}

/// A vpp-load subcommand whose calls go to tenants it prepares first (`mix`, `counts`): `VPPLoadCommand.runMain`
/// hands it the preparer, which stores the tenants' tokens and apps in the database and so is not this module's.
public protocol TenantLoadSubcommand: ParsableCommand {
    func execute(preparingTenantsWith preparer: any LoadTenantPreparing) async throws
}

/// The subcommands of vpp-load that only drive an RPC port, for the root command `VPPLoadCommand` (VPPBenchKit),
/// which lists them with the database benchmarks in the order `vpp-load --help` shows.
public enum LoadKitSubcommands {
    public static var ping: any ParsableCommand.Type { PingCommand.self }
    public static var counts: any ParsableCommand.Type { CountsCommand.self }
    public static var mix: any ParsableCommand.Type { MixCommand.self }
    public static var idle: any ParsableCommand.Type { IdleCommand.self }
    public static var echoServer: any ParsableCommand.Type { EchoServerCommand.self }
    public static var createTenants: any ParsableCommand.Type { CreateTenantsCommand.self }
    public static var abuse: any ParsableCommand.Type { AbuseCommand.self }
}
