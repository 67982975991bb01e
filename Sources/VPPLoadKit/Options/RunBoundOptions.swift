import ArgumentParser

/// When a run stops: after --duration, or after --calls calls (10s when neither is given). Shared by the subcommands
/// that run a call workload (ping, counts, mix).
struct RunBoundOptions: ParsableArguments {
    @Option(help: "Send calls for this long, e.g. 10s, 2m (at most 1h). The default when --calls is not given: 10s.")
    var duration: String?

    @Option(help: "Make this many calls in all, instead of running for a duration.")
    var calls: Int?

    func validate() throws {
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
}
