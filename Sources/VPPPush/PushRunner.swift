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
    /// Issue 18: while the token's notifications arrive, an event is polled only once this long has passed without
    /// its notification (Apple: "if no notification arrives within 5 minutes, poll"). Once a poll finds an event
    /// that no notification reported, the token is polled at `eventPollInterval` again until notifications return.
    let notifiedPollInterval: Duration
    /// Reads what notifications said about an event (nil: events are only polled).
    let events: EventNotifications?
    /// Wakes a waiting push when a notification about its event arrives (nil: it looks every second).
    let signals: (any EventSignals)?
    let logger: Logger

    public init(
        ledger: LicenseLedger,
        tokens: TokenStore,
        apple: AppleVPPClient,
        identity: MDMInfo,
        eventPollInterval: Duration,
        notifiedPollInterval: Duration = .seconds(300),
        events: EventNotifications? = nil,
        signals: (any EventSignals)? = nil,
        logger: Logger
    ) {
        self.ledger = ledger
        self.tokens = tokens
        self.apple = apple
        self.identity = identity
        self.eventPollInterval = eventPollInterval
        self.notifiedPollInterval = notifiedPollInterval
        self.events = events
        self.signals = signals
        self.logger = logger
    }

    /// What a push knows about the token it pushes for.
    struct Target {
        var tenantID: UUID
        var tokenID: UUID
        var session: AppleVPPSession
        /// The token's notifications arrive (subscribed, none missed since the last one).
        var notified: Bool
        var subscribed: Bool
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
            let target = Target(
                tenantID: tenantID,
                tokenID: tokenID,
                session: session,
                notified: self.events != nil && record.notifications.flowing,
                subscribed: self.events != nil && record.notifications.subscribed
            )
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
                try await self.send(rows, target, limits: limits, into: &outcome)
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

    private func send(_ rows: [OutboxRow], _ target: Target, limits: ServiceLimits, into outcome: inout Outcome)
        async throws
    {
        let (session, tenantID, tokenID) = (target.session, target.tenantID, target.tokenID)
        // Rows sent before (by a push that died): follow their events.
        let sent = Dictionary(grouping: rows.filter { $0.eventID != nil }, by: { $0.eventID! })
        for (eventID, group) in sent.sorted(by: { $0.key < $1.key }) {
            do {
                outcome.countsStale = try await self.awaitAssetEvent(eventID, target) || outcome.countsStale
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
                var allNotified = true
                for event in events {
                    let wanted = Set(chunk.map(\.clientUserID))
                    let (found, notified) = try await self.awaitUsersEvent(event.eventId, users: wanted, target)
                    for (id, failure) in found { failures[id] = failure }
                    allNotified = allNotified && notified
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
                // Their invitations come with USER_MANAGEMENT's notification; polled, a sync must read them.
                outcome.usersRegistered = outcome.usersRegistered || !allNotified
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
                        try await self.ledger.markSent(
                            tenantID: tenantID,
                            rows: chunk.map(\.id),
                            eventID: event.eventId
                        )
                        outcome.countsStale =
                            try await self.awaitAssetEvent(event.eventId, target) || outcome.countsStale
                        outcome.applied += chunk.count
                    }
                }
            }
        }
    }

    /// Waits for an associate or disassociate event the rows were sent in, and applies its answer: each notification
    /// as it arrives, or what `/status` says when none came in time. Returns whether Apple's counts proved stale.
    private func awaitAssetEvent(_ eventID: String, _ target: Target) async throws -> Bool {
        var stale = false
        return try await self.awaitEvent(
            eventID,
            target,
            answered: {
                guard let events = self.events else { return nil }
                let (remaining, countsStale) = try await events.applyAssetEvent(
                    tenantID: target.tenantID,
                    tokenID: target.tokenID,
                    eventID: eventID
                )
                stale = stale || countsStale
                return remaining == 0 ? stale : nil
            },
            polled: { status in
                let rows = try await self.ledger.outbox(
                    tenantID: target.tenantID,
                    tokenID: target.tokenID,
                    eventID: eventID
                )
                let countsStale = try await self.apply(status, rows, tenantID: target.tenantID, tokenID: target.tokenID)
                return (stale || countsStale, !rows.isEmpty)
            }
        )
    }

    /// Waits for a users event and returns the failures per user: from its notifications once they name every user
    /// of the request, or from `/status`.
    private func awaitUsersEvent(_ eventID: String, users: Set<String>, _ target: Target) async throws
        -> (failures: [String: (Int, String)], notified: Bool)
    {
        try await self.awaitEvent(
            eventID,
            target,
            answered: {
                guard let events = self.events else { return nil }
                let outcomes = try await events.userOutcomes(
                    tenantID: target.tenantID,
                    tokenID: target.tokenID,
                    eventID: eventID
                )
                guard users.isSubset(of: outcomes.keys) else { return nil }
                var failures: [String: (Int, String)] = [:]
                for case (let id, .failed(let number, let message)) in outcomes { failures[id] = (number, message) }
                return (failures, true)
            },
            polled: { status in
                var failures: [String: (Int, String)] = [:]
                for failure in status.failures ?? [] {
                    for id in failure.errorInfo?.clientUserIds ?? [] {
                        failures[id] = (failure.errorNumber, failure.errorMessage ?? "error \(failure.errorNumber)")
                    }
                }
                return ((failures, false), true)
            }
        )
    }

    /// The wait for one of Apple's events (issue 18). `answered` reads what notifications said and returns the result
    /// once they said everything; it runs at once (a notification may have come before the push recorded the event),
    /// whenever a notification about the event arrives, and before each poll. When the poll is due, `/status` is read
    /// as before, and `polled` applies it; it says whether anything was still unanswered (then a notification was
    /// missed, and the token goes back to the fast pace). Apple: poll no more often than every 30 s, and resubmit an
    /// event still PENDING after 10 minutes (a timeout error, as `waitForEvent` throws).
    private func awaitEvent<T: Sendable>(
        _ eventID: String,
        _ target: Target,
        answered: () async throws -> T?,
        polled: (StatusResponse) async throws -> (T, unanswered: Bool)
    ) async throws -> T {
        let started = ContinuousClock.now
        let timeout = Duration.seconds(600)
        var nextPoll =
            started + (target.notified ? self.notifiedPollInterval : min(.seconds(2), self.eventPollInterval))
        let key = EventSignalsKey.event(eventID)
        while true {
            let generation = self.signals?.generation ?? 0
            if let result = try await answered() { return result }
            let now = ContinuousClock.now
            if now >= nextPoll {
                let status = try await target.session.eventStatus(eventID)
                if status.isFinished {
                    let (result, unanswered) = try await polled(status)
                    if unanswered, target.subscribed {
                        try await self.tokens.recordMissedNotification(tenantID: target.tenantID, target.tokenID)
                    }
                    return result
                }
                guard now + self.eventPollInterval <= started + timeout else {
                    throw AppleVPPError(
                        kind: .timeout,
                        message: "event \(eventID) still PENDING after \(timeout); resubmit the request"
                    )
                }
                nextPoll = now + self.eventPollInterval
                continue
            }
            if self.events == nil {
                try await Task.sleep(for: nextPoll - now)
            } else if let signals = self.signals {
                // Woken by the event's notification; a lost wake-up (a listener reconnecting) costs at most 10 s.
                await signals.wait(for: key, since: generation, timeout: min(nextPoll - now, .seconds(10)))
            } else {
                try await Task.sleep(for: min(nextPoll - now, .seconds(1)))
            }
            try Task.checkCancellation()
        }
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
