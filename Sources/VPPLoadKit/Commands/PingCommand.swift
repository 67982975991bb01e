import ArgumentParser

/// `vpp-load ping`: the RPC path with no storage behind it.
struct PingCommand: LoadSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Call /vpp.v1.SystemService/Ping from many connections, many calls in flight on each.",
        discussion: """
            Opens --connections connections and keeps --in-flight calls in flight on each until --duration has \
            passed or --calls calls were made (default: 10s). Any key works. Exits 1 if any call failed.
            Example: VPP_API_KEY=… vpp-load ping --connections 4 --in-flight 32 --duration 10s
            """
    )

    @OptionGroup var target: TargetOptions

    @Option(help: "Connections, each its own client.")
    var connections: Int = 4

    @Option(name: .customLong("in-flight"), help: "Calls in flight on each connection.")
    var inFlight: Int = 32

    @OptionGroup var runBound: RunBoundOptions

    @Option(name: .customLong("payload-bytes"), help: "Bytes of payload in each Ping (echoed back).")
    var payloadBytes: Int = 32

    mutating func validate() throws {
        guard (1...1000).contains(self.connections) else { throw ValidationError("--connections must be 1 to 1000.") }
        guard (1...1024).contains(self.inFlight) else { throw ValidationError("--in-flight must be 1 to 1024.") }
        guard (0...(1 << 20)).contains(self.payloadBytes) else {
            throw ValidationError("--payload-bytes must be 0 to 1048576.")
        }
    }

    func bound() throws -> LoadPlan.Bound {
        try self.runBound.bound()
    }

    func execute() async throws {
        let plan = LoadPlan(
            connections: self.connections,
            concurrency: self.connections * self.inFlight,
            bound: try self.bound(),
            callTimeout: self.target.callTimeout
        )
        try await self.target.runAndReport(PingWorkload(payloadBytes: self.payloadBytes), plan: plan)
    }
}
