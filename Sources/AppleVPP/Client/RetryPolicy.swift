/// When and how long to wait before sending a failed request again.
///
/// Exponential backoff with full jitter (`random(0...min(maxDelay, baseDelay × 2^attempt))`), never shorter than a
/// `Retry-After` Apple gave. A `Retry-After` longer than `maxRetryAfter` ends the retries: the error (with its
/// `retryAfterSeconds`) goes to the caller, whose scheduler can wait without holding a task.
public struct RetryPolicy: Hashable, Sendable {
    /// Attempts in all, the first included; 1 disables retries.
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    public var maxRetryAfter: Duration

    public init(
        maxAttempts: Int = 5,
        baseDelay: Duration = .milliseconds(500),
        maxDelay: Duration = .seconds(30),
        maxRetryAfter: Duration = .seconds(120)
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    public static let none = RetryPolicy(maxAttempts: 1)

    /// The wait before attempt `attempt + 1` after `error` ended attempt `attempt` (1-based), or `nil` to give up.
    public func delay(
        afterAttempt attempt: Int,
        error: AppleVPPError,
        random: (ClosedRange<Double>) -> Double = {
            Double.random(in: $0)
        }
    ) -> Duration? {
        guard attempt < maxAttempts, error.isRetryable else { return nil }
        let cap = min(maxDelay.seconds, baseDelay.seconds * Double(1 << min(attempt - 1, 30)))
        let backoff = random(0...max(0, cap))
        guard let retryAfter = error.retryAfterSeconds else { return .seconds(backoff) }
        guard retryAfter <= maxRetryAfter.seconds else { return nil }
        return .seconds(max(retryAfter, backoff))
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
