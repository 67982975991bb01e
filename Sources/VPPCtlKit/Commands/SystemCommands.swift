import ArgumentParser
import Foundation
import VPPProto

/// `vppctl whoami` (SystemService.WhoAmI).
struct WhoAmICommand: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "whoami",
        abstract: "Show who the API key is: operator or tenant, and which key.",
        discussion: "Example: vppctl whoami"
    )

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let answer = try await ctl.call(VppV1.SystemService.WhoAmI.self, VppV1.WhoAmIRequest())
            ctl.printer.record(answer)
        }
    }
}

/// `vppctl ping` (SystemService.Ping).
struct PingCommand: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Check that the server answers, and how fast.",
        discussion: "Example: vppctl ping"
    )

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            try await ctl.client.connect()
            let start = ContinuousClock.now
            let answer = try await ctl.call(VppV1.SystemService.Ping.self, VppV1.PingRequest())
            let elapsed = ContinuousClock.now - start
            let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            let serverTime = answer.serverTime.map(ProtoJSON.rfc3339) ?? ""
            ctl.printer.result(
                "\(ctl.connection.serverDescription) answered in \(String(format: "%.1f", milliseconds)) ms "
                    + "(server time \(serverTime)).",
                json: .object([
                    .init("server", .string(ctl.connection.serverDescription)),
                    .init("round_trip_ms", .uint(UInt64(milliseconds.rounded()))),
                    .init("server_time", .string(serverTime)),
                ])
            )
        }
    }
}

/// `vppctl config`: the connection settings in force (no RPC).
struct ConfigCommand: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show the connection settings in force and where each came from (the key is never shown).",
        discussion: """
            Each setting comes from its flag, else its environment variable, else the config file, else the default.
            Example: vppctl config --server vpp.example.net:7443
            """
    )

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        let resolved = try self.connection.resolve(environment: ProcessInfo.processInfo.environment)
        let printer = Printer.standard(self.output)
        let value = JSONValue.object([
            .init("server", .string(resolved.serverDescription)),
            .init("server_source", .string(resolved.sources["server"] ?? "")),
            .init("api_key_source", .string(resolved.sources["api_key"] ?? "")),
            .init("timeout", .string("\(resolved.timeout.components.seconds)s")),
            .init("timeout_source", .string(resolved.sources["timeout"] ?? "")),
            .init("transport", .string(resolved.transportDescription)),
            .init("transport_source", .string(resolved.sources["transport"] ?? "")),
            .init("config_file", resolved.configFile.map { .string($0) } ?? .null),
        ])
        print(printer.renderRecord(value))
    }
}
