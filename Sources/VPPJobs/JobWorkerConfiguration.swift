import Foundation

/// How a `JobWorker` claims and runs jobs.
public struct JobWorkerConfiguration: Sendable {
    /// Jobs run at once.
    public var concurrency: Int
    /// How long a claimed job is held without a heartbeat; heartbeats go every third of it. A worker that dies holds
    /// its jobs this long before another worker takes them up.
    public var lease: Duration
    /// How often an idle worker looks for work when no notification arrives (a lost NOTIFY, a retry coming due on
    /// another server): the fallback, not the normal way to find work.
    public var pollInterval: Duration
    /// The wait before a failed attempt runs again.
    public var backoff: RetryBackoff
    /// At shutdown, how long running jobs may go on before they are given back to the queue.
    public var shutdownGracePeriod: Duration
    /// At most one progress write per job per this interval (a new phase is written at once).
    public var progressInterval: Duration
    /// How often the queue depth gauges are refreshed.
    public var depthInterval: Duration
    /// After a claim filled every free slot, how long the worker may wait for half its slots to be free before it
    /// claims again: claims come in batches under load, and a ready job waits at most this much longer.
    public var claimBatchWindow: Duration
    /// The lease owner this worker writes: unique per worker, readable by people (`host:pid:uuid`).
    public var owner: String

    public init(
        concurrency: Int = 4,
        lease: Duration = .seconds(60),
        pollInterval: Duration = .seconds(15),
        backoff: RetryBackoff = RetryBackoff(),
        shutdownGracePeriod: Duration = .seconds(20),
        progressInterval: Duration = .milliseconds(200),
        depthInterval: Duration = .seconds(5),
        claimBatchWindow: Duration = .milliseconds(10),
        owner: String? = nil
    ) {
        self.concurrency = max(1, concurrency)
        self.lease = max(lease, .seconds(1))
        self.pollInterval = max(pollInterval, .milliseconds(100))
        self.backoff = backoff
        self.shutdownGracePeriod = shutdownGracePeriod
        self.progressInterval = progressInterval
        self.depthInterval = depthInterval
        self.claimBatchWindow = claimBatchWindow
        self.owner = owner ?? Self.defaultOwner()
    }

    /// `host:pid:` and eight hex digits of a random UUID, so two workers in one process differ too.
    public static func defaultOwner() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let host =
            gethostname(&buffer, buffer.count) == 0
            ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "unknown-host"
        let random = UUID().uuidString.prefix(8).lowercased()
        return "\(host):\(getpid()):\(random)"
    }
}
