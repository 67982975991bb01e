import CoreMetrics
import NIOConcurrencyHelpers

/// The RPC server's Prometheus metrics, through swift-metrics (vppd bootstraps the Prometheus backend):
/// - `vpp_rpc_calls_total{method,status}`: calls by method and final status;
/// - `vpp_rpc_call_duration_seconds{method}`: call latency histogram;
/// - `vpp_rpc_connections_open`: connections open now;
/// - `vpp_rpc_connections_total`, `vpp_rpc_connections_refused_total`;
/// - `vpp_rpc_frames_rejected_total{reason}`: frames refused (too large, truncated, malformed, protocol errors).
///
/// Metric objects are cached per label set: creating them through the factory on every call would cost a lock and
/// a dictionary look-up in the backend each time.
public final class ServerMetrics: Sendable {
    private let calls = NIOLockedValueBox<[CallKey: CoreMetrics.Counter]>([:])
    private let durations = NIOLockedValueBox<[String: CoreMetrics.Timer]>([:])
    private let rejected = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])
    private let openConnections = NIOLockedValueBox<Int>(0)
    private let openConnectionsGauge = Gauge(label: "vpp_rpc_connections_open")
    private let connectionsTotal = CoreMetrics.Counter(label: "vpp_rpc_connections_total")
    private let connectionsRefused = CoreMetrics.Counter(label: "vpp_rpc_connections_refused_total")

    private struct CallKey: Hashable {
        var method: String
        var status: String
    }

    public init() {}

    func callFinished(method: String, status: String, durationNanoseconds: Int64) {
        let counter = self.calls.withLockedValue { cache in
            if let counter = cache[CallKey(method: method, status: status)] { return counter }
            let counter = CoreMetrics.Counter(
                label: "vpp_rpc_calls_total",
                dimensions: [("method", method), ("status", status)]
            )
            cache[CallKey(method: method, status: status)] = counter
            return counter
        }
        counter.increment()
        let timer = self.durations.withLockedValue { cache in
            if let timer = cache[method] { return timer }
            let timer = CoreMetrics.Timer(
                label: "vpp_rpc_call_duration_seconds",
                dimensions: [("method", method)],
                preferredDisplayUnit: .seconds
            )
            cache[method] = timer
            return timer
        }
        timer.recordNanoseconds(durationNanoseconds)
    }

    func frameRejected(reason: String) {
        let counter = self.rejected.withLockedValue { cache in
            if let counter = cache[reason] { return counter }
            let counter = CoreMetrics.Counter(label: "vpp_rpc_frames_rejected_total", dimensions: [("reason", reason)])
            cache[reason] = counter
            return counter
        }
        counter.increment()
    }

    /// Counts a new connection if there is room; false when `limit` connections are already open.
    func connectionOpened(limit: Int) -> Bool {
        let admitted = self.openConnections.withLockedValue { open -> Bool in
            guard open < limit else { return false }
            open += 1
            return true
        }
        if admitted {
            self.connectionsTotal.increment()
            self.openConnectionsGauge.record(self.openConnectionCount)
        } else {
            self.connectionsRefused.increment()
        }
        return admitted
    }

    func connectionClosed() {
        self.openConnections.withLockedValue { $0 -= 1 }
        self.openConnectionsGauge.record(self.openConnectionCount)
    }

    public var openConnectionCount: Int { self.openConnections.withLockedValue { $0 } }
}
