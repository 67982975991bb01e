/// The wait before a failed attempt runs again: exponential backoff with full jitter (a random wait between zero and
/// `base * 2^(attempt-1)`, capped), so many jobs failing together do not all come back together. Never shorter than the
/// time the handler asked for (a Retry-After from Apple), even above the cap.
public struct RetryBackoff: Sendable, Hashable {
    public var base: Duration
    public var cap: Duration

    public init(base: Duration = .seconds(5), cap: Duration = .seconds(15 * 60)) {
        self.base = base
        self.cap = cap
    }

    /// The ceiling of the jitter after attempt `attempt` (1-based) failed.
    public func ceiling(afterAttempt attempt: Int) -> Duration {
        let doublings = min(max(attempt - 1, 0), 30)
        let ceiling = self.base * (1 << doublings)
        return min(ceiling, self.cap)
    }

    /// The delay after attempt `attempt` failed, at least `requested`.
    public func delay(
        afterAttempt attempt: Int,
        requested: Duration?,
        using generator: inout some RandomNumberGenerator
    ) -> Duration {
        let ceiling = self.ceiling(afterAttempt: attempt)
        let millis = max(0, ceiling.components.seconds * 1000 + ceiling.components.attoseconds / 1_000_000_000_000_000)
        let jittered = Duration.milliseconds(Int64.random(in: 0...millis, using: &generator))
        guard let requested else { return jittered }
        return max(jittered, requested)
    }

    public func delay(afterAttempt attempt: Int, requested: Duration?) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return self.delay(afterAttempt: attempt, requested: requested, using: &generator)
    }
}
