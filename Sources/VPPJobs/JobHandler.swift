/// Runs the jobs of one kind. The worker calls `run` once per attempt, in a task of its own; a handler should check
/// for cancellation at its natural pauses (the worker cancels the task when the job's lease is lost or when a
/// shutdown's grace period ends).
///
/// Throwing is the same as returning `.retry(after: nil, error: "\(error)")`, except that an error conforming to
/// `RetryAfterProviding` gives its own earliest retry time.
public protocol JobHandler: Sendable {
    func run(_ job: JobRecord, context: JobContext) async throws -> JobOutcome
}

/// How an attempt ended.
public enum JobOutcome: Sendable, Hashable {
    /// Done; `result` is JSON text (`{}` for nothing to say).
    case succeeded(result: String)
    /// Try again later: after the worker's backoff, and not before `after` when given (Apple's Retry-After). Fails
    /// instead when this was the job's last allowed attempt.
    case retry(after: Duration?, error: String)
    /// Give up for good; `result` is JSON text.
    case failed(error: String, result: String)
}

/// An error that knows when it is worth trying again (an HTTP 429/503 with Retry-After).
public protocol RetryAfterProviding: Error {
    var retryAfter: Duration? { get }
}
