import CoreMetrics
import NIOConcurrencyHelpers

/// The job workers' metrics, through swift-metrics (vppd bootstraps the Prometheus backend):
/// - `vpp_jobs_queue_depth{kind,state}`: active jobs in the whole queue (every server's), refreshed by each worker
///   every few seconds;
/// - `vpp_jobs_wait_seconds{kind}`: from when an attempt became ready to run to when a worker started it;
/// - `vpp_jobs_run_seconds{kind}`: how long handlers ran;
/// - `vpp_jobs_outcomes_total{kind,outcome}`: attempts by how they ended: `succeeded`, `retried`, `failed`,
///   `lease_lost` (taken over or cancelled while running), `released` (given back at shutdown), `unrecorded` (the
///   outcome could not be written; the lease will expire and another worker takes the job up);
/// - `vpp_jobs_retries_total{kind}`: attempts that will be retried.
///
/// Metric objects are cached per label set, as in `ServerMetrics`.
final class JobMetrics: Sendable {
    private struct DepthKey: Hashable {
        var kind: String
        var state: JobState
    }

    private struct OutcomeKey: Hashable {
        var kind: String
        var outcome: String
    }

    private let waits = NIOLockedValueBox<[String: CoreMetrics.Timer]>([:])
    private let runs = NIOLockedValueBox<[String: CoreMetrics.Timer]>([:])
    private let outcomes = NIOLockedValueBox<[OutcomeKey: CoreMetrics.Counter]>([:])
    private let retries = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])
    private let depths = NIOLockedValueBox<[DepthKey: Gauge]>([:])

    func waited(kind: String, nanoseconds: Int64) {
        let timer = self.waits.withLockedValue { cache in
            if let timer = cache[kind] { return timer }
            let timer = CoreMetrics.Timer(
                label: "vpp_jobs_wait_seconds",
                dimensions: [("kind", kind)],
                preferredDisplayUnit: .seconds
            )
            cache[kind] = timer
            return timer
        }
        timer.recordNanoseconds(max(0, nanoseconds))
    }

    func ran(kind: String, duration: Duration) {
        let timer = self.runs.withLockedValue { cache in
            if let timer = cache[kind] { return timer }
            let timer = CoreMetrics.Timer(
                label: "vpp_jobs_run_seconds",
                dimensions: [("kind", kind)],
                preferredDisplayUnit: .seconds
            )
            cache[kind] = timer
            return timer
        }
        let (seconds, attoseconds) = duration.components
        timer.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    func outcome(kind: String, _ outcome: String) {
        let key = OutcomeKey(kind: kind, outcome: outcome)
        let counter = self.outcomes.withLockedValue { cache in
            if let counter = cache[key] { return counter }
            let counter = CoreMetrics.Counter(
                label: "vpp_jobs_outcomes_total",
                dimensions: [("kind", kind), ("outcome", outcome)]
            )
            cache[key] = counter
            return counter
        }
        counter.increment()
    }

    func retried(kind: String) {
        let counter = self.retries.withLockedValue { cache in
            if let counter = cache[kind] { return counter }
            let counter = CoreMetrics.Counter(label: "vpp_jobs_retries_total", dimensions: [("kind", kind)])
            cache[kind] = counter
            return counter
        }
        counter.increment()
    }

    /// Records the depth of every (kind, state) seen so far: one that is no longer in `depth` reads 0.
    func record(_ depth: JobQueueDepth) {
        let gauges = self.depths.withLockedValue { cache -> [(Gauge, Int)] in
            for (kind, states) in depth.byKind {
                for state in states.keys where cache[DepthKey(kind: kind, state: state)] == nil {
                    cache[DepthKey(kind: kind, state: state)] = Gauge(
                        label: "vpp_jobs_queue_depth",
                        dimensions: [("kind", kind), ("state", state.rawValue)]
                    )
                }
            }
            return cache.map { key, gauge in (gauge, depth.byKind[key.kind]?[key.state] ?? 0) }
        }
        for (gauge, value) in gauges { gauge.record(value) }
    }
}
