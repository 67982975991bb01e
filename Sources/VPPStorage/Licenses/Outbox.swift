public import Foundation
public import VPPLicensing
import VPPPostgres

/// One change Apple must be told about (a row of the tenant's `apple_outbox`).
public struct OutboxRow: Sendable, Hashable {
    public enum Operation: String, Sendable, Hashable {
        case associate
        case disassociate
    }

    public var id: Int64
    public var operation: Operation
    public var adamID: String
    public var pricingParam: String
    public var serialNumber: String
    public var clientUserID: String
    public var licenseID: UUID?
    /// Set once the request went to Apple: follow this event instead of sending again.
    public var eventID: String?
}

/// How Apple answered one outbox row.
public enum OutboxOutcome: Sendable, Hashable {
    case done
    /// Apple's error number and message for this item.
    case failed(errorNumber: Int, message: String)
}

extension LicenseLedger {
    /// Clears the token's "outbox has rows" flag; the push job does this before it reads the outbox, so a change
    /// committed while it runs sets the flag again and is picked up by the next push.
    public func clearOutboxFlag(tenantID: UUID, tokenID: UUID) async throws {
        try await self.storage.pool.query(
            "UPDATE vpp_control.token_registry SET outbox_pending = false WHERE token_id = \(tokenID) AND tenant_id = \(tenantID)"
        )
    }

    /// Clears the flag and says whether it was set (changes arrived since it was last cleared).
    public func takeOutboxFlag(tenantID: UUID, tokenID: UUID) async throws -> Bool {
        let rows = try await self.storage.pool.query(
            """
            UPDATE vpp_control.token_registry SET outbox_pending = false
            WHERE token_id = \(tokenID) AND tenant_id = \(tenantID) AND outbox_pending
            RETURNING token_id
            """
        )
        return !rows.isEmpty
    }

    /// Tokens whose outbox has rows to send (for the scheduler, which queues their push jobs).
    public func tokensWithOutbox(tenantID: UUID? = nil, limit: Int) async throws -> [(tenantID: UUID, tokenID: UUID)] {
        let rows = try await self.storage.pool.query(
            """
            SELECT r.tenant_id, r.token_id FROM vpp_control.token_registry r
            JOIN vpp_control.tenants t ON t.id = r.tenant_id AND t.state = 'active'
            WHERE r.outbox_pending AND r.sync_enabled AND (\(tenantID)::uuid IS NULL OR r.tenant_id = \(tenantID))
            LIMIT \(limit)
            """
        )
        return try rows.map { (try $0.decode(UUID.self, at: 0), try $0.decode(UUID.self, at: 1)) }
    }

    /// The token's outbox rows, oldest first.
    public func outbox(tenantID: UUID, tokenID: UUID, limit: Int) async throws -> [OutboxRow] {
        try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                SELECT id, operation, adam_id, pricing_param, serial_number, client_user_id, license_id, event_id
                FROM apple_outbox WHERE token_id = \(tokenID) ORDER BY id LIMIT \(limit)
                """
            ).map(Self.decodeOutboxRow)
        }
    }

    /// The token's outbox rows sent to Apple as one event and not answered yet, oldest first.
    public func outbox(tenantID: UUID, tokenID: UUID, eventID: String) async throws -> [OutboxRow] {
        try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                SELECT id, operation, adam_id, pricing_param, serial_number, client_user_id, license_id, event_id
                FROM apple_outbox WHERE token_id = \(tokenID) AND event_id = \(eventID) ORDER BY id
                """
            ).map(Self.decodeOutboxRow)
        }
    }

    static func decodeOutboxRow(_ row: PostgresRow) throws -> OutboxRow {
        OutboxRow(
            id: try row.decode(Int64.self, at: 0),
            operation: OutboxRow.Operation(rawValue: try row.decode(String.self, at: 1)) ?? .associate,
            adamID: try row.decode(String.self, at: 2),
            pricingParam: try row.decode(String.self, at: 3),
            serialNumber: try row.decode(String.self, at: 4),
            clientUserID: try row.decode(String.self, at: 5),
            licenseID: try row.decode(UUID?.self, at: 6),
            eventID: try row.decode(String?.self, at: 7)
        )
    }

    /// Users the token's outbox needs at Apple and this service has not registered there yet (R19, R20): the
    /// associations waiting for them are the record that they must be registered.
    public func pendingUsers(tenantID: UUID, tokenID: UUID, limit: Int) async throws -> [(
        clientUserID: String, email: String
    )] {
        try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                SELECT o.client_user_id, coalesce(min(u.email), '')
                FROM apple_outbox o
                LEFT JOIN users u ON u.id::text = o.client_user_id
                WHERE o.token_id = \(tokenID) AND o.operation = 'associate' AND o.client_user_id <> ''
                  AND NOT EXISTS (
                      SELECT 1 FROM vpp_users v
                      WHERE v.token_id = \(tokenID) AND v.client_user_id = o.client_user_id
                        AND v.status IN ('Registered', 'Associated', 'Retired', 'Failed')
                  )
                GROUP BY o.client_user_id
                ORDER BY o.client_user_id
                LIMIT \(limit)
                """
            ).map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1)) }
        }
    }

    /// Applies Apple's answer to user registrations: registered (or already there, 9716), or refused — then the
    /// user's seats fail with Apple's reason and the seats go back to waiters.
    public func completeUsers(
        tenantID: UUID,
        tokenID: UUID,
        _ results: [(clientUserID: String, outcome: OutboxOutcome)]
    ) async throws {
        guard !results.isEmpty else { return }
        try await self.inLedger(tenantID) { transaction in
            let done = results.compactMap { result -> String? in
                switch result.outcome {
                case .done, .failed(9716, _): return result.clientUserID
                case .failed: return nil
                }
            }
            try await transaction.query(
                """
                INSERT INTO vpp_users (token_id, client_user_id, email, status, user_id)
                SELECT \(tokenID), c.id, coalesce(u.email, ''), 'Registered', u.id
                FROM unnest(\(done)::text[]) AS c(id) LEFT JOIN users u ON u.id::text = c.id
                ON CONFLICT (token_id, client_user_id) DO UPDATE SET status = 'Registered'
                    WHERE vpp_users.status IN ('Pending', 'Failed')
                """
            )
            var touched: Set<UUID> = []
            for case (let clientUserID, .failed(let number, let message)) in results where number != 9716 {
                try await transaction.query(
                    """
                    INSERT INTO vpp_users (token_id, client_user_id, status, user_id)
                    SELECT \(tokenID), \(clientUserID), 'Failed', (SELECT id FROM users WHERE id::text = \(clientUserID))
                    ON CONFLICT (token_id, client_user_id) DO UPDATE SET status = 'Failed'
                    """
                )
                let assets = try await transaction.query(
                    """
                    UPDATE licenses l SET state = 'failed', reason = \("Apple refused to register the user (\(number)): \(message)"),
                        updated_at = clock_timestamp()
                    FROM assets s
                    WHERE s.id = l.asset_id AND s.token_id = \(tokenID) AND l.user_id::text = \(clientUserID)
                      AND l.state = 'reserved'
                    RETURNING l.asset_id
                    """
                )
                for row in assets { touched.insert(try row.decode(UUID.self, at: 0)) }
            }
            for assetID in touched.sorted(by: { $0.uuidString < $1.uuidString }) {
                let asset = try await Self.lockAsset(assetID, transaction)
                try await Self.allocate(asset, transaction)
            }
        }
    }

    /// Records that these rows went to Apple as one event.
    public func markSent(tenantID: UUID, rows: [Int64], eventID: String) async throws {
        _ = try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                UPDATE apple_outbox SET state = 'sent', event_id = \(eventID), attempts = attempts + 1
                WHERE id = ANY(\(rows))
                """
            )
        }
    }

    /// Puts rows back to be sent again (their event was lost or never finished). They stay 'sending', not 'pending':
    /// Apple may have applied them, so the ledger must not cancel them as never sent.
    public func markUnsent(tenantID: UUID, rows: [Int64]) async throws {
        _ = try await self.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                "UPDATE apple_outbox SET state = 'sending', event_id = NULL WHERE id = ANY(\(rows))"
            )
        }
    }

    /// Marks rows the push is about to send ('sending'), in a committed statement before they go: the ledger then
    /// knows Apple may hold them, and cancels only associations still 'pending' (never sent). Returns the ids still
    /// there to send (a row cancelled meanwhile is not sent).
    public func markSending(tenantID: UUID, rows: [Int64]) async throws -> Set<Int64> {
        try await self.storage.withTenant(tenantID) { transaction in
            Set(
                try await transaction.query(
                    "UPDATE apple_outbox SET state = 'sending' WHERE id = ANY(\(rows)) AND state <> 'sent' RETURNING id"
                ).map { try $0.decode(Int64.self, at: 0) }
            )
        }
    }

    /// Applies Apple's answers to the ledger in one transaction, following `LicenseStateMachine`: an association
    /// confirmed grants the seat; "not enough licenses" (9709) puts the target back at the front of the line and holds
    /// the asset's seats until the token's counts are synced again; another refusal fails the entry; a
    /// disassociation confirmed frees the seat. Then each touched asset is reconciled: the line is served and a target
    /// wanted again joins it. Returns whether Apple's counts must be re-read (a 9709).
    @discardableResult
    public func complete(tenantID: UUID, tokenID: UUID, _ results: [(row: OutboxRow, outcome: OutboxOutcome)])
        async throws -> Bool
    {
        guard !results.isEmpty else { return false }
        return try await self.inLedger(tenantID) { transaction in
            // The assets first, in id order, as every ledger change does: a reconcile running at the same time waits,
            // so neither decides from a snapshot the other is changing.
            try await transaction.query(
                """
                SELECT id FROM assets WHERE token_id = \(tokenID) AND adam_id = ANY(\(Array(Set(results.map(\.row.adamID))))::text[])
                ORDER BY id FOR UPDATE
                """
            )
            // Only rows still in the outbox are applied: a notification and a poll may both answer one event
            // (issue 18), and the second to commit finds the rows gone and changes nothing.
            let present = Set(
                try await transaction.query(
                    "DELETE FROM apple_outbox WHERE id = ANY(\(results.map(\.row.id))) RETURNING id"
                ).map { try $0.decode(Int64.self, at: 0) }
            )
            var touchedAssets: Set<UUID> = []
            var refreshCounts = false
            for (row, outcome) in results where present.contains(row.id) {
                switch (row.operation, outcome) {
                case (.associate, .done), (.associate, .failed(9616, _)):
                    // appleAssociated (9616: already assigned, a resend after a crash). A seat that is being removed or
                    // given back meanwhile keeps its state: Apple holds it until the disassociation that follows.
                    guard let licenseID = row.licenseID else { continue }
                    try await transaction.query(
                        """
                        UPDATE licenses SET state = 'granted', updated_at = clock_timestamp()
                        WHERE id = \(licenseID) AND state = 'reserved'
                        """
                    )
                    try await transaction.query(
                        """
                        INSERT INTO apple_assignments (token_id, adam_id, pricing_param, client_user_id, serial_number, origin,
                                                       confirmed_at)
                        VALUES (\(tokenID), \(row.adamID), \(row.pricingParam), \(row.clientUserID), \(row.serialNumber),
                                'service', clock_timestamp())
                        ON CONFLICT DO NOTHING
                        """
                    )
                case (.associate, .failed(let number, let message)):
                    guard let licenseID = row.licenseID else { continue }
                    if number == 9709 {
                        // appleHasNoLicense (R15): Apple has fewer seats than counted: back to the front of the line;
                        // the asset hands out no more seats until its counts are re-read (the push asks for a sync).
                        let asset = try await transaction.query(
                            """
                            UPDATE licenses SET state = 'waiting',
                                wait_seq = (SELECT coalesce(min(wait_seq), nextval('licenses_wait_seq')) - 1 FROM licenses
                                            WHERE asset_id = licenses.asset_id AND state = 'waiting'),
                                reason = 'Apple reported no license left when asked to assign one; the counts are being synced again.',
                                updated_at = clock_timestamp()
                            WHERE id = \(licenseID) AND state = 'reserved'
                            RETURNING asset_id
                            """
                        )
                        if let assetID = try asset.first?.decode(UUID.self, at: 0) {
                            refreshCounts = true
                            try await transaction.query(
                                """
                                UPDATE assets SET foreign_assigned = greatest(foreign_assigned, total_count - (
                                    SELECT count(*) FROM licenses
                                    WHERE asset_id = \(assetID) AND state IN ('reserved', 'granted', 'removing', 'releasing')))
                                WHERE id = \(assetID)
                                """
                            )
                        }
                    }
                    // appleRefused (and 9709 for a seat no longer wanted): the entry fails with Apple's answer; no
                    // seat is held. Reconciling removes it where no assignment wants it.
                    let failed = try await transaction.query(
                        """
                        UPDATE licenses SET state = 'failed', reason = \("Apple refused the license (\(number)): \(message)"),
                            wait_seq = NULL, updated_at = clock_timestamp()
                        WHERE id = \(licenseID) AND state IN ('reserved', 'removing', 'releasing')
                        RETURNING asset_id
                        """
                    )
                    if let assetID = try failed.first?.decode(UUID.self, at: 0) { touchedAssets.insert(assetID) }
                case (.disassociate, .done), (.disassociate, .failed(9610, _)):
                    // appleDisassociated (9610: Apple has no such license: it is free all the same). Rows whose license
                    // is gone are seats of deleted devices or users (see licenses_release_deleted).
                    let asset = try await transaction.query(
                        "DELETE FROM licenses WHERE id = \(row.licenseID) AND state = 'releasing' RETURNING asset_id"
                    )
                    try await transaction.query(
                        """
                        DELETE FROM apple_assignments
                        WHERE token_id = \(tokenID) AND adam_id = \(row.adamID) AND pricing_param = \(row.pricingParam)
                          AND client_user_id = \(row.clientUserID) AND serial_number = \(row.serialNumber)
                        """
                    )
                    if let assetID = try asset.first?.decode(UUID.self, at: 0) {
                        touchedAssets.insert(assetID)
                    } else {
                        // A deleted target's seat: free all the same, so its asset's line moves too.
                        let owner = try await transaction.query(
                            """
                            SELECT id FROM assets WHERE token_id = \(tokenID) AND adam_id = \(row.adamID)
                              AND pricing_param = \(row.pricingParam)
                            """
                        )
                        if let assetID = try owner.first?.decode(UUID.self, at: 0) { touchedAssets.insert(assetID) }
                    }
                case (.disassociate, .failed(9706, _)):
                    // appleCannotTakeBack: the asset is not revocable (books): the license stays with its user at
                    // Apple. The entry goes, and the seat counts as held elsewhere until the next full sync counts it.
                    try await transaction.query(
                        "DELETE FROM licenses WHERE id = \(row.licenseID) AND state = 'releasing'"
                    )
                    let owner = try await transaction.query(
                        """
                        UPDATE assets SET foreign_assigned = foreign_assigned + 1
                        WHERE token_id = \(tokenID) AND adam_id = \(row.adamID) AND pricing_param = \(row.pricingParam)
                        RETURNING id
                        """
                    )
                    if let assetID = try owner.first?.decode(UUID.self, at: 0) { touchedAssets.insert(assetID) }
                case (.disassociate, .failed):
                    // Stays 'releasing' (the seat stays counted) and is sent again by the next push.
                    try await transaction.query(
                        "INSERT INTO apple_outbox (token_id, operation, adam_id, pricing_param, serial_number, client_user_id, license_id) VALUES (\(tokenID), 'disassociate', \(row.adamID), \(row.pricingParam), \(row.serialNumber), \(row.clientUserID), \(row.licenseID))"
                    )
                }
            }
            for assetID in touchedAssets.sorted(by: { $0.uuidString < $1.uuidString }) {
                let asset = try await Self.lockAsset(assetID, transaction)
                try await Self.reconcile(asset: asset, reclaim: self.reclaim, transaction)
            }
            return refreshCounts
        }
    }
}
