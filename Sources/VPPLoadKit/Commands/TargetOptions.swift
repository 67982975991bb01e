import ArgumentParser
import Foundation
import VPPClient

/// Where the load goes and how each call behaves: shared by every subcommand.
struct TargetOptions: ParsableArguments {
    @Option(help: "The server's address. Only loopback addresses are accepted unless --allow-remote is given.")
    var host: String = "127.0.0.1"

    @Option(help: "The server's RPC port.")
    var port: Int = 7443

    @Option(
        name: .customLong("api-key"),
        help: "The API key (env VPP_API_KEY, which keeps it out of the process list)."
    )
    var apiKey: String?

    @Flag(help: "Allow a --host that is not on this machine. Only for a server you run and may load.")
    var allowRemote = false

    @Option(help: "Each call's deadline, e.g. 10s or 500ms.")
    var timeout: String = "10s"

    @Option(
        name: .customLong("ca-file"),
        help:
            "Connect with TLS, trusting the CA in this PEM file (a server with --tls-cert-file). Without it: TLS with the system's CAs off loopback, plain TCP on loopback."
    )
    var caFile: String?

    @Option(name: .customLong("tls-server-name"), help: "The name the server's certificate must carry, if not --host.")
    var tlsServerName: String?

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    mutating func validate() throws {
        do {
            try TargetHost.validate(self.host, allowRemote: self.allowRemote)
        } catch {
            throw ValidationError(error.description)
        }
        guard (1...65535).contains(self.port) else {
            throw ValidationError("--port must be 1 to 65535.")
        }
        guard let timeout = LoadDuration.parse(self.timeout), timeout > .zero else {
            throw ValidationError("--timeout must be a positive duration such as 10s or 500ms, not \(self.timeout).")
        }
        guard self.resolvedAPIKey != nil else {
            throw ValidationError("Give an API key: --api-key KEY or the environment variable VPP_API_KEY.")
        }
    }

    var resolvedAPIKey: String? {
        let key = self.apiKey ?? ProcessInfo.processInfo.environment["VPP_API_KEY"]
        guard let key, !key.isEmpty else { return nil }
        return key
    }

    var callTimeout: Duration { LoadDuration.parse(self.timeout) ?? .seconds(10) }

    var targetDescription: String {
        self.host.contains(":") && !self.host.hasPrefix("[")
            ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    func clientConfiguration() -> ClientConfiguration {
        ClientConfiguration(
            host: self.host.hasPrefix("[") ? String(self.host.dropFirst().dropLast()) : self.host,
            port: self.port,
            apiKey: self.resolvedAPIKey ?? "",
            clientName: "vpp-load/1",
            defaultTimeout: self.callTimeout,
            // A run measures one server as it is: a call on a connection the server closed fails (and is counted)
            // only once, then the client reconnects, as a real client would.
            reconnect: true,
            security: self.caFile != nil || self.tlsServerName != nil
                ? .tls(ClientTLS(trustRootsFile: self.caFile, serverName: self.tlsServerName)) : .automatic
        )
    }

    /// Runs the workload and prints its report; fails (exit 1) when any call failed, after printing.
    /// `apiKeys`: one per tenant, taken by the connections in turn; empty: every connection uses this key.
    func runAndReport(_ workload: some Workload, plan: LoadPlan, apiKeys: [String] = []) async throws {
        let result = try await LoadRunner(client: self.clientConfiguration(), apiKeys: apiKeys).run(
            workload,
            plan: plan
        )
        let report = Report(workload: workload, target: self.targetDescription, plan: plan, result: result)
        print(self.json ? try report.json() : report.human())
        if report.failed > 0 {
            throw ExitCode(1)
        }
    }
}
