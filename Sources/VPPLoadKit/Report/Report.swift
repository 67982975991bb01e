import Foundation
import VPPClock

/// The figures of one run, rendered for people (`human`) or programs (`json`).
///
/// The JSON field names are stable: scripts (Benchmarks/) read them. Add fields, never rename them. Every field is
/// always present; `duration_limit_seconds` and `call_limit` are null when the run had the other bound.
public struct Report: Sendable, Equatable, Codable {
    /// Latency of the successful calls, in microseconds; all 0 when no call succeeded.
    public struct Latency: Sendable, Equatable, Codable {
        public var min: UInt64
        public var mean: Double
        public var p50: UInt64
        public var p90: UInt64
        public var p99: UInt64
        public var p99_9: UInt64
        public var max: UInt64

        enum CodingKeys: String, CodingKey {
            case min, mean, p50, p90, p99, max
            case p99_9 = "p99_9"
        }
    }

    public var workload: String
    /// What a successful call makes ("calls", "tenants").
    public var unit: String
    public var target: String
    public var connections: Int
    /// Calls in flight in all.
    public var concurrency: Int
    public var durationLimitSeconds: Double?
    public var callLimit: Int?
    public var calls: Int
    public var ok: Int
    public var failed: Int
    public var elapsedSeconds: Double
    /// Every finished call, failed ones included.
    public var callsPerSecond: Double
    /// Successful calls only: tenants per second for create-tenants.
    public var okPerSecond: Double
    public var latencyMicroseconds: Latency
    /// Failed calls by status code name.
    public var errors: [String: Int]
    /// The first message of each failing status.
    public var errorSamples: [String: String]
    public var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case workload, unit, target, connections, concurrency, calls, ok, failed, errors, warnings
        case durationLimitSeconds = "duration_limit_seconds"
        case callLimit = "call_limit"
        case elapsedSeconds = "elapsed_seconds"
        case callsPerSecond = "calls_per_second"
        case okPerSecond = "ok_per_second"
        case latencyMicroseconds = "latency_us"
        case errorSamples = "error_samples"
    }

    public init(workload: some Workload, target: String, plan: LoadPlan, result: LoadResult) {
        let recorder = result.recorder
        let seconds = (result.elapsed).inSeconds
        self.workload = workload.name
        self.unit = workload.unit
        self.target = target
        self.connections = plan.connections
        self.concurrency = plan.concurrency
        switch plan.bound {
        case .duration(let duration):
            self.durationLimitSeconds = (duration).inSeconds
            self.callLimit = nil
        case .calls(let count):
            self.durationLimitSeconds = nil
            self.callLimit = count
        }
        self.calls = recorder.callCount
        self.ok = recorder.successCount
        self.failed = recorder.errorCount
        self.elapsedSeconds = seconds
        self.callsPerSecond = seconds > 0 ? Double(recorder.callCount) / seconds : 0
        self.okPerSecond = seconds > 0 ? Double(recorder.successCount) / seconds : 0
        let histogram = recorder.histogram
        let empty = histogram.totalCount == 0
        self.latencyMicroseconds = Latency(
            min: empty ? 0 : histogram.min,
            mean: empty ? 0 : histogram.mean,
            p50: recorder.microseconds(atPercentile: 50),
            p90: recorder.microseconds(atPercentile: 90),
            p99: recorder.microseconds(atPercentile: 99),
            p99_9: recorder.microseconds(atPercentile: 99.9),
            max: empty ? 0 : histogram.max
        )
        self.errors = recorder.errors
        self.errorSamples = recorder.errorSamples
        self.warnings = result.warnings
    }

    /// Writes null for absent optionals, so every field is always there.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.workload, forKey: .workload)
        try container.encode(self.unit, forKey: .unit)
        try container.encode(self.target, forKey: .target)
        try container.encode(self.connections, forKey: .connections)
        try container.encode(self.concurrency, forKey: .concurrency)
        try container.encode(self.durationLimitSeconds, forKey: .durationLimitSeconds)
        try container.encode(self.callLimit, forKey: .callLimit)
        try container.encode(self.calls, forKey: .calls)
        try container.encode(self.ok, forKey: .ok)
        try container.encode(self.failed, forKey: .failed)
        try container.encode(self.elapsedSeconds, forKey: .elapsedSeconds)
        try container.encode(self.callsPerSecond, forKey: .callsPerSecond)
        try container.encode(self.okPerSecond, forKey: .okPerSecond)
        try container.encode(self.latencyMicroseconds, forKey: .latencyMicroseconds)
        try container.encode(self.errors, forKey: .errors)
        try container.encode(self.errorSamples, forKey: .errorSamples)
        try container.encode(self.warnings, forKey: .warnings)
    }

    /// One JSON object on one line, keys sorted.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// A small table for people.
    public func human() -> String {
        var lines: [String] = []
        func row(_ label: String, _ value: String) {
            lines.append(label.padding(toLength: 14, withPad: " ", startingAt: 0) + value)
        }
        lines.append("vpp-load \(self.workload) → \(self.target)")
        let perConnection = (self.concurrency + self.connections - 1) / self.connections
        row(
            "connections",
            "\(self.connections), \(self.concurrency) calls in flight (up to \(perConnection) per connection)"
        )
        if let limit = self.durationLimitSeconds {
            row("bound", "\(Self.decimal(limit, 1)) s")
        } else if let limit = self.callLimit {
            row("bound", "\(limit) calls")
        }
        row("calls", "\(self.calls): \(self.ok) ok, \(self.failed) failed")
        row("elapsed", "\(Self.decimal(self.elapsedSeconds, 3)) s")
        var throughput = "\(Self.decimal(self.okPerSecond, 1)) \(self.unit)/s"
        if self.failed > 0 {
            throughput += " (\(Self.decimal(self.callsPerSecond, 1)) calls/s with the failed ones)"
        }
        row("throughput", throughput)
        let latency = self.latencyMicroseconds
        row(
            "latency (µs)",
            "p50 \(latency.p50)  p90 \(latency.p90)  p99 \(latency.p99)  p99.9 \(latency.p99_9)  max \(latency.max)"
                + "  (min \(latency.min), mean \(Self.decimal(latency.mean, 0)))"
        )
        if self.errors.isEmpty {
            row("errors", "none")
        } else {
            let byCount = self.errors.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
            for (position, (status, count)) in byCount.enumerated() {
                row(position == 0 ? "errors" : "", "\(status) \(count): \(self.errorSamples[status] ?? "")")
            }
        }
        for warning in self.warnings {
            row("warning", warning)
        }
        return lines.joined(separator: "\n")
    }

    private static func decimal(_ value: Double, _ places: Int) -> String {
        String(format: "%.\(places)f", value)
    }
}
