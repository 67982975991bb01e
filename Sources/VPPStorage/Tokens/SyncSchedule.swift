public import Foundation
public import VPPPostgres

extension Storage {
    /// R7: takes up to `limit` tokens whose scheduled sync is due and moves each one's next time on by `interval`
    /// with ±10% jitter, so tokens synced together drift apart. `each` runs for every token taken, in the same
    /// transaction (the caller queues the token's sync there: a sync is queued exactly when its time moves on).
    ///
    /// Several servers may call it at once: due rows are taken with `FOR UPDATE SKIP LOCKED`, so each is taken by one
    /// of them. Tokens of suspended tenants and tokens whose sync is disabled (expired, invalid, claimed elsewhere)
    /// are not due. Returns how many tokens were taken; `limit` of them means more may be due.
    public func takeDueSyncs(
        limit: Int,
        interval: Duration,
        _ each: (_ tenantID: UUID, _ tokenID: UUID, PostgresTransaction) async throws -> Void
    ) async throws -> Int {
        guard limit > 0 else { return 0 }
        let seconds = interval.components.seconds
        return try await self.pool.transaction { transaction in
            let due = try await transaction.query(
                """
                WITH due AS (
                    SELECT r.token_id FROM vpp_control.token_registry r
                    JOIN vpp_control.tenants t ON t.id = r.tenant_id AND t.state = 'active'
                    WHERE r.sync_enabled AND r.next_sync_at <= clock_timestamp()
                    ORDER BY r.next_sync_at
                    LIMIT \(limit)
                    FOR UPDATE OF r SKIP LOCKED
                )
                UPDATE vpp_control.token_registry r
                SET next_sync_at = clock_timestamp() + \(seconds)::bigint * (0.9 + random() * 0.2) * interval '1 second'
                FROM due WHERE r.token_id = due.token_id
                RETURNING r.token_id, r.tenant_id
                """
            )
            for row in due {
                try await each(try row.decode(UUID.self, at: 1), try row.decode(UUID.self, at: 0), transaction)
            }
            return due.count
        }
    }
}
