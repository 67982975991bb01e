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

    @Option(help: "Send calls for this long, e.g. 10s, 2m (at most 1h). The default when --calls is not given: 10s.")
    var duration: String?

    @Option(help: "Make this many calls in all, instead of running for a duration.")
    var calls: Int?

    @Option(name: .customLong("payload-bytes"), help: "Bytes of payload in each Ping (echoed back).")
    var payloadBytes: Int = 32

    mutating func validate() throws {
        guard (1...1000).contains(self.connections) else { throw ValidationError("--connections must be 1 to 1000.") }
        guard (1...1024).contains(self.inFlight) else { throw ValidationError("--in-flight must be 1 to 1024.") }
        guard (0...(1 << 20)).contains(self.payloadBytes) else {
            throw ValidationError("--payload-bytes must be 0 to 1048576.")
        }
        _ = try self.bound()
    }

    func bound() throws -> LoadPlan.Bound {
        switch (self.duration, self.calls) {
        case (.some, .some):
            throw ValidationError("Give --duration or --calls, not both.")
        case (nil, .some(let calls)):
            guard calls >= 1 else { throw ValidationError("--calls must be at least 1.") }
            return .calls(calls)
        case (let text, nil):
            let text = text ?? "10s"
            guard let duration = LoadDuration.parse(text), duration > .zero, duration <= .seconds(3600) else {
                throw ValidationError("--duration must be a duration from 1ms to 1h such as 10s or 2m, not \(text).")
            }
            return .duration(duration)
        }
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
