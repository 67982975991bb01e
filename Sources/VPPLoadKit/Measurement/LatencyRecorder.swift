public import Histogram

/// What the calls of one task (or, merged, of a whole run) did: the latency of every successful call in an
/// HdrHistogram, in microseconds, and the failed calls counted by status name.
///
/// Each task owns a recorder of its own, so recording takes no lock; the runner merges them at the end. Every
/// recorder has the same histogram layout, which `merge(_:)` needs.
public struct LatencyRecorder: Sendable {
    /// The slowest latency the histogram tracks; slower calls are recorded as this value (and counted in
    /// `clampedCount`), since a histogram refuses values beyond its range.
    public static let highestTrackableMicroseconds: UInt64 = 3_600_000_000

    public private(set) var histogram: Histogram<UInt64>
    /// Failed calls by status code name ("UNAVAILABLE"); errors that are not statuses count as "CLIENT_ERROR".
    public private(set) var errors: [String: Int] = [:]
    /// The first message seen for each failing status, to say what went wrong without a log.
    public private(set) var errorSamples: [String: String] = [:]
    public private(set) var clampedCount = 0

    public init() {
        self.histogram = Histogram(
            lowestDiscernibleValue: 1,
            highestTrackableValue: Self.highestTrackableMicroseconds,
            numberOfSignificantValueDigits: .three
        )
    }

    public var successCount: Int { Int(self.histogram.totalCount) }
    public var errorCount: Int { self.errors.values.reduce(0, +) }
    public var callCount: Int { self.successCount + self.errorCount }

    /// Records a successful call's latency.
    public mutating func recordSuccess(_ latency: Duration) {
        var micros = Self.microseconds(latency)
        if micros > Self.highestTrackableMicroseconds {
            micros = Self.highestTrackableMicroseconds
            self.clampedCount += 1
        }
        self.histogram.record(micros)
    }

    /// Records a failed call.
    public mutating func recordFailure(status: String, message: String) {
        self.errors[status, default: 0] += 1
        if self.errorSamples[status] == nil {
            self.errorSamples[status] = message
        }
    }

    public mutating func merge(_ other: LatencyRecorder) {
        self.histogram.add(other.histogram)
        self.errors.merge(other.errors, uniquingKeysWith: +)
        self.errorSamples.merge(other.errorSamples, uniquingKeysWith: { mine, _ in mine })
        self.clampedCount += other.clampedCount
    }

    /// The latency at `percentile` (0...100) in microseconds; 0 when nothing succeeded.
    public func microseconds(atPercentile percentile: Double) -> UInt64 {
        self.histogram.totalCount == 0 ? 0 : self.histogram.valueAtPercentile(percentile)
    }

    /// Whole microseconds, rounded down; negative durations (which a monotonic clock never gives) count as 0.
    static func microseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) &* 1_000_000 &+ UInt64(attoseconds / 1_000_000_000_000)
    }
}
