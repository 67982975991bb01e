import Foundation
import Logging
import Metrics
import ServiceLifecycle
import VPPLogKeys
import VPPStorage
import VPPClock

/// Refreshes the fleet gauges every `interval` from the shared database, so the alerts of docs/operations.md
/// (Deploy/prometheus/alerts.yml) have something to watch:
///
/// - `vpp_tokens{state}`: tokens by state (valid, expiringSoon, expired, claimedElsewhere, invalid; R6)
/// - `vpp_tokens_expiring_30d`: active tokens that expire within 30 days (R3: their tenants must renew them)
/// - `vpp_token_expiry_soonest_seconds`: seconds until the next active token expires (`noTokenSentinel` when none)
/// - `vpp_licenses_waiting`: users and devices waiting for a license across all tenants (R15, R16)
/// - `vpp_fleet_gauges_refresh_seconds`: how long the last refresh took
///
/// Every server reports the same fleet-wide values (alert on max/min, not sum). The cost is one small query per tenant
/// per refresh; with many servers, a longer --gauge-interval or 0 (off) on all but a few keeps it down.
struct FleetGauges: Service {
    let storage: Storage
    let interval: Duration
    let logger: Logger

    /// What `vpp_token_expiry_soonest_seconds` reads when no active token exists: 10 years, so "< 7 days" never fires.
    static let noTokenSentinel: Double = 10 * 365 * 86400

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.refresh()
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning(
                        "Could not refresh the fleet gauges; will try again",
                        metadata: [LogKey.error: "\(error)"]
                    )
                }
                try? await Task.sleep(for: self.interval)
            }
        }
    }

    func refresh() async throws {
        let started = ContinuousClock.now
        let snapshot = try await self.storage.fleetSnapshot()
        for (state, count) in snapshot.tokens {
            Gauge(label: "vpp_tokens", dimensions: [("state", state.rawValue)]).record(count)
        }
        Gauge(label: "vpp_tokens_expiring_30d").record(snapshot.tokens[.expiringSoon] ?? 0)
        Gauge(label: "vpp_token_expiry_soonest_seconds").record(snapshot.soonestExpirySeconds ?? Self.noTokenSentinel)
        Gauge(label: "vpp_licenses_waiting").record(snapshot.licensesWaiting)
        let took = ContinuousClock.now - started
        Gauge(label: "vpp_fleet_gauges_refresh_seconds").record(took.inSeconds)
        self.logger.debug(
            "Fleet gauges refreshed",
            metadata: [LogKey.tenants: "\(snapshot.tenants)", LogKey.took: "\(took)"]
        )
    }
}
