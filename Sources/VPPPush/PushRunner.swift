public import AppleVPP
public import Foundation
public import Logging
public import VPPStorage
public import VPPSync

/// Sends a token's outbox to Apple (users to register, licenses to associate and disassociate), in batches within
/// the service-config limits, follows each event to its end, and applies the answers to the ledger.
///
/// Crash safety: outbox rows are written with the ledger change they describe; a row is marked 'sent' with its event id
/// once Apple accepted the request, and deleted only with the ledger update that applies Apple's answer. A push that
/// dies before recording the event sends the rows again; Apple then answers "already assigned" (9616) or "no such
/// license" (9610), which count as done, so nothing is lost and nothing is assigned twice.
public struct PushRunner: Sendable {
    let ledger: LicenseLedger
    let tokens: TokenStore
    let apple: AppleVPPClient
    let identity: MDMInfo
    /// Time between `/status` polls (Apple asks for 30 s; tests use less).
    let eventPollInterval: Duration
    let logger: Logger

    public init(
        ledger: LicenseLedger,
        tokens: TokenStore,
        apple: AppleVPPClient,
        identity: MDMInfo,
        eventPollInterval: Duration,
        logger: Logger
    ) {
        self.ledger = ledger
        self.tokens = tokens
        self.apple = apple
        self.identity = identity
        self.eventPollInterval = eventPollInterval
        self.logger = logger
    }

    /// Rows read per round; a round sends them all, then reads again until the outbox is empty.
    static let roundSize = 20_000

    /// What a push did: the rows applied, and whether Apple's counts proved stale (a 9709), so the token's counts must
    /// be synced again.
    public struct Outcome: Sendable, Hashable {
        public var applied = 0
        public var countsStale = false
        /// Users were registered at Apple: their invitations (R20) are read by the next sync.
        public var usersRegistered = false
    }

    public func run(tenantID: UUID, tokenID: UUID) async throws(SyncFailure) -> Outcome {
        do {
            try await self.ledger.clearOutboxFlag(tenantID: tenantID, tokenID: tokenID)
            let (record, credential, _) = try await self.tokens.credential(tenantID: tenantID, tokenID)
            guard record.status == .active else {
                throw SyncFailure(
                    disposition: .stop,
                    message: "The token is not active (\(record.status.rawValue)); changes wait until it is renewed."
                )
            }
            let token = try ServiceToken(fileContents: credential, now: Date())
            let session = self.apple.session(token: token, ownMDMInfo: self.identity)
            let limits = try await self.apple.limits()
            var outcome = Outcome()
            for _ in 0..<50 {
                let rows = try await self.ledger.outbox(tenantID: tenantID, tokenID: tokenID, limit: Self.roundSize)
                if rows.isEmpty {
                    // Changes committed while this push ran joined it: take them too before ending (the scheduler's
                    // sweep covers the last moments between this check and the job's end).
                    guard try await self.ledger.takeOutboxFlag(tenantID: tenantID, tokenID: tokenID) else { break }
                    continue
                }
                try await self.send(
                    rows,
                    session: session,
                    limits: limits,
                    tenantID: tenantID,
                    tokenID: tokenID,
                    into: &outcome
                )
            }
            return outcome
        } catch let failure as SyncFailure {
            throw failure
        } catch let error as AppleVPPError {
            if error.isRetryable {
                throw SyncFailure(
                    disposition: .retry(after: error.retryAfterSeconds.map { .milliseconds(Int64($0 * 1000)) }),
                    message: "Apple is unavailable or throttling (\(error)); the changes will be sent again."
                )
            }
            throw SyncFailure(
                disposition: error.isTokenDead ? .stop : .retry(after: nil),
                message: "Apple refused: \(error)."
            )
        } catch let error as StorageError {
            throw SyncFailure(disposition: .stop, message: "\(error)")
        } catch {
            throw SyncFailure(
                disposition: .retry(after: nil),
                message: "Sending changes to Apple failed (\(type(of: error))); they will be sent again."
            )
        }
    }

    private func send(
        _ rows: [OutboxRow],
        session: AppleVPPSession,
        limits: ServiceLimits,
        tenantID: UUID,
        tokenID: UUID,
        into outcome: inout Outcome
    ) async throws {
        // Rows sent before (by a push that died): follow their events.
        let sent = Dictionary(grouping: rows.filter { $0.eventID != nil }, by: { $0.eventID! })
        for (eventID, group) in sent.sorted(by: { $0.key < $1.key }) {
            do {
                let status = try await session.waitForEvent(eventID, pollInterval: self.eventPollInterval)
                outcome.countsStale =
                    try await self.apply(status, group, tenantID: tenantID, tokenID: tokenID) || outcome.countsStale
            } catch let error as AppleVPPError
                where error.errorNumber == AppleVPPError.Number.eventNotFound || error.kind == .timeout
            {
                try await self.ledger.markUnsent(tenantID: tenantID, rows: group.map(\.id))
            }
            outcome.applied += group.count
        }
        // A seat's disassociation goes only after its association is answered: were both sent at once, Apple could
        // take back first and assign after, and keep a seat the ledger gave back. Deferred rows go next round.
        let associating = Set(rows.filter { $0.operation == .associate }.compactMap(\.licenseID))
        let fresh = rows.filter { row in
            row.eventID == nil
                && !(row.operation == .disassociate && row.licenseID.map(associating.contains) == true)
        }
        // Users first: a license for a user needs the user at Apple (R20). A registration sent again after a crash
        // is answered "user exists" (9716), which counts as done.
        while true {
            let users = try await self.ledger.pendingUsers(tenantID: tenantID, tokenID: tokenID, limit: Self.roundSize)
            if users.isEmpty { break }
            for chunk in users.chunked(into: max(1, limits.maxUsers)) {
                let events = try await session.createUsers(
                    chunk.map { RequestUser(clientUserId: $0.clientUserID, email: $0.email.isEmpty ? nil : $0.email) }
                )
                var failures: [String: (Int, String)] = [:]
                for event in events {
                    let status = try await session.waitForEvent(event.eventId, pollInterval: self.eventPollInterval)
                    for failure in status.failures ?? [] {
                        for id in failure.errorInfo?.clientUserIds ?? [] {
                            failures[id] = (failure.errorNumber, failure.errorMessage ?? "error \(failure.errorNumber)")
                        }
                    }
                }
                try await self.ledger.completeUsers(
                    tenantID: tenantID,
                    tokenID: tokenID,
                    chunk.map { user in
                        if let (number, message) = failures[user.clientUserID] {
                            return (user.clientUserID, .failed(errorNumber: number, message: message))
                        }
                        return (user.clientUserID, .done)
                    }
                )
                outcome.applied += chunk.count
                outcome.usersRegistered = true
            }
        }
        // Seats given back first, so Apple has them free before the associations that take them.
        for operation in [OutboxRow.Operation.disassociate, .associate] {
            let ofKind = fresh.filter { $0.operation == operation }
            let byAsset = Dictionary(grouping: ofKind, by: { "\($0.adamID)\u{1F}\($0.pricingParam)" })
            for (_, group) in byAsset.sorted(by: { $0.key < $1.key }) {
                for (isDevice, rows) in [
                    (true, group.filter { !$0.serialNumber.isEmpty }),
                    (false, group.filter { $0.serialNumber.isEmpty }),
                ] {
                    let size = max(1, isDevice ? limits.maxSerialNumbers : limits.maxClientUserIds)
                    for planned in rows.chunked(into: size) where !planned.isEmpty {
                        // Marked 'sending' first: the ledger cancels only associations never sent, so one cancelled
                        // since this round read the outbox is not sent now.
                        let sendable = try await self.ledger.markSending(tenantID: tenantID, rows: planned.map(\.id))
                        let chunk = planned.filter { sendable.contains($0.id) }
                        guard !chunk.isEmpty else { continue }
                        let request = ManageAssetsRequest(
                            assets: [
                                AssetReference(
                                    adamId: chunk[0].adamID,
                                    pricingParam: PricingParam(rawValue: chunk[0].pricingParam)
                                )
                            ],
                            clientUserIds: isDevice ? nil : chunk.map(\.clientUserID),
                            serialNumbers: isDevice ? chunk.map(\.serialNumber) : nil
                        )
                        let event: EventResponse
                        do {
                            event =
                                operation == .associate
                                ? try await session.associate(request)
                                : try await session.disassociate(request)
                        } catch let error as AppleVPPError
                            where operation == .disassociate
                            && error.errorNumber == AppleVPPError.Number.assetNotRevocable
                        {
                            // 9706: Apple cannot take back a license of this asset (books): the seats stay spent with
                            // their users. The ledger stops counting them as its own instead of retrying for ever.
                            try await self.ledger.complete(
                                tenantID: tenantID,
                                tokenID: tokenID,
                                chunk.map {
                                    ($0, .failed(errorNumber: error.errorNumber ?? 9706, message: error.message))
                                }
                            )
                            outcome.applied += chunk.count
                            continue
                        }
                        outcome.countsStale =
                            try await self.follow(
                                event.eventId,
                                chunk,
                                session: session,
                                tenantID: tenantID,
                                tokenID: tokenID
                            )
                            || outcome.countsStale
                        outcome.applied += chunk.count
                    }
                }
            }
        }
    }

    /// Records the event, waits for its end, and applies the answer.
    private func follow(
        _ eventID: String,
        _ rows: [OutboxRow],
        session: AppleVPPSession,
        tenantID: UUID,
        tokenID: UUID
    ) async throws -> Bool {
        try await self.ledger.markSent(tenantID: tenantID, rows: rows.map(\.id), eventID: eventID)
        let status = try await session.waitForEvent(eventID, pollInterval: self.eventPollInterval)
        return try await self.apply(status, rows, tenantID: tenantID, tokenID: tokenID)
    }

    /// Matches an event's failures to its rows (by serial number or client user id); the others succeeded. Returns
    /// whether Apple's counts proved stale.
    private func apply(_ status: StatusResponse, _ rows: [OutboxRow], tenantID: UUID, tokenID: UUID) async throws
        -> Bool
    {
        var failures: [String: (Int, String)] = [:]
        var unattributed: (Int, String)?
        for failure in status.failures ?? [] {
            let message = failure.errorMessage ?? "error \(failure.errorNumber)"
            let keys = (failure.errorInfo?.serialNumbers ?? []) + (failure.errorInfo?.clientUserIds ?? [])
            if keys.isEmpty { unattributed = (failure.errorNumber, message) }
            for key in keys { failures[key] = (failure.errorNumber, message) }
        }
        let results: [(row: OutboxRow, outcome: OutboxOutcome)] = rows.map { row in
            let key = row.serialNumber.isEmpty ? row.clientUserID : row.serialNumber
            if let (number, message) = failures[key] { return (row, .failed(errorNumber: number, message: message)) }
            if status.eventStatus == .failed, failures.isEmpty, let (number, message) = unattributed {
                return (row, .failed(errorNumber: number, message: message))
            }
            return (row, .done)
        }
        return try await self.ledger.complete(tenantID: tenantID, tokenID: tokenID, results)
    }
}

extension Array {
    func chunked(into size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
