public import Foundation
import VPPLogKeys
import VPPPostgres

/// Figures across every tenant, for the operators' gauges and alerts: tokens by state (R6), how soon the next one
/// expires (R3), and targets waiting for a license (R15, R16). Only counts leave the tenant schemas.
public struct FleetSnapshot: Sendable, Equatable {
    /// Tokens by the state shown to people (R6); every state is present, 0 when no token has it.
    public var tokens: [TokenRecord.State: Int]
    /// Seconds until the soonest expiry among active, unexpired tokens; nil when there is none.
    public var soonestExpirySeconds: Double?
    /// Targets (users and devices) waiting in a license waiting line, across all tenants.
    public var licensesWaiting: Int
    /// Tenants read; a tenant deleted during the read is skipped.
    public var tenants: Int

    public init(
        tokens: [TokenRecord.State: Int] = [:],
        soonestExpirySeconds: Double? = nil,
        licensesWaiting: Int = 0,
        tenants: Int = 0
    ) {
        self.tokens = Dictionary(uniqueKeysWithValues: TokenRecord.State.allCases.map { ($0, tokens[$0] ?? 0) })
        self.soonestExpirySeconds = soonestExpirySeconds
        self.licensesWaiting = licensesWaiting
        self.tenants = tenants
    }
}

extension Storage {
    /// Reads the fleet's figures: one short read-only query per tenant, in the tenant's own scope (C3) and in one round
    /// trip, `concurrency` tenants at a time. Suspended tenants count too: their tokens still expire.
    public func fleetSnapshot(now: Date = Date(), concurrency: Int = 4) async throws -> FleetSnapshot {
        let tenantIDs = try await self.pool.query("SELECT id FROM vpp_control.tenants ORDER BY id")
            .map { try $0.decode(UUID.self, at: 0) }
        struct TenantFigures: Sendable {
            var tokens: [(status: String, expiresAt: Date)] = []
            var waiting = 0
        }
        let read: @Sendable (UUID) async -> TenantFigures? = { tenantID in
            do {
                // One round trip in the tenant's scope (C3), as the tenant reads of calls do (`readInTenant`).
                let schema = TenantSchema(tenantID: tenantID)
                let rows = try await self.pool.pipelinedRead(
                    setup: schema.scopeStatements.map { PostgresQuery(stringLiteral: $0) },
                    """
                    SELECT status, expires_at, (SELECT count(*) FROM licenses WHERE state = 'waiting')::bigint
                    FROM tokens
                    """
                ).rows
                var figures = TenantFigures()
                for row in rows {
                    figures.tokens.append((try row.decode(String.self, at: 0), try row.decode(Date.self, at: 1)))
                    figures.waiting = try row.decode(Int.self, at: 2)
                }
                return figures
            } catch {
                // Deleted (or being created) while we read: its figures are not part of the fleet any more.
                self.logger.debug(
                    "Fleet figures skip a tenant",
                    metadata: [LogKey.tenantID: "\(tenantID)", LogKey.error: "\(error)"]
                )
                return nil
            }
        }
        var snapshot = FleetSnapshot()
        func add(_ figures: TenantFigures) {
            snapshot.tenants += 1
            snapshot.licensesWaiting += figures.waiting
            for token in figures.tokens {
                let status = TokenRecord.Status(rawValue: token.status) ?? .invalid
                snapshot.tokens[TokenRecord.state(status: status, expiresAt: token.expiresAt, at: now), default: 0] += 1
                if status == .active, token.expiresAt > now {
                    let seconds = token.expiresAt.timeIntervalSince(now)
                    snapshot.soonestExpirySeconds = min(snapshot.soonestExpirySeconds ?? seconds, seconds)
                }
            }
        }
        await withTaskGroup(of: TenantFigures?.self) { group in
            var iterator = tenantIDs.makeIterator()
            for _ in 0..<max(1, concurrency) {
                guard let tenantID = iterator.next() else { break }
                group.addTask { await read(tenantID) }
            }
            while let figures = await group.next() {
                if let figures { add(figures) }
                if let tenantID = iterator.next() {
                    group.addTask { await read(tenantID) }
                }
            }
        }
        return snapshot
    }
}
