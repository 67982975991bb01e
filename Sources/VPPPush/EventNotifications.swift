import AppleVPP
public import Foundation
public import VPPStorage

/// Wakes a push that waits for one of Apple's events when a notification about it arrives, in any server (fed from
/// `Storage.appleEventsChannel`). A waiter first reads `generation`, then checks what arrived, then waits "since" that
/// generation: a signal that came between the check and the wait is not lost.
public protocol EventSignals: Sendable {
    var generation: UInt64 { get }
    /// Returns when `key` is signalled after `generation`, after `timeout`, or on cancellation.
    func wait(for key: String, since generation: UInt64, timeout: Duration) async
}

/// The keys `EventSignals` are signalled with.
public enum EventSignalsKey {
    /// The key an event's notifications signal.
    public static func event(_ eventID: String) -> String { "apple-event:" + eventID }
}

/// What the notifications recorded for one of Apple's events say (issue 18), applied to the outbox rows still
/// waiting for it. Notifications may come before the push recorded the event, more than once, or out of order: each
/// is applied only to rows still waiting (`LicenseLedger.complete` drops rows already answered), so applying them
/// again changes nothing.
public struct EventNotifications: Sendable {
    let ledger: LicenseLedger
    let tokens: TokenStore

    public init(ledger: LicenseLedger, tokens: TokenStore) {
        self.ledger = ledger
        self.tokens = tokens
    }

    /// Where one assignment is: the asset and the device or user.
    struct Key: Hashable {
        var adamID: String
        var pricingParam: String
        var subject: String

        init(_ row: OutboxRow) {
            self.adamID = row.adamID
            self.pricingParam = row.pricingParam
            self.subject = row.serialNumber.isEmpty ? "u:" + row.clientUserID : "d:" + row.serialNumber
        }

        init(_ assignment: Assignment) {
            self.adamID = assignment.adamId
            self.pricingParam = assignment.pricingParam.rawValue
            self.subject = assignment.serialNumber.map { "d:" + $0 } ?? "u:" + (assignment.clientUserId ?? "")
        }
    }

    /// Applies the ASSET_MANAGEMENT notifications received for `eventID` to the token's rows still waiting for it.
    /// Returns how many rows still wait, and whether Apple's counts proved stale (a 9709).
    public func applyAssetEvent(tenantID: UUID, tokenID: UUID, eventID: String) async throws -> (
        remaining: Int, countsStale: Bool
    ) {
        let rows = try await self.ledger.outbox(tenantID: tenantID, tokenID: tokenID, eventID: eventID)
        guard !rows.isEmpty else { return (0, false) }
        let outcomes = try await self.assetOutcomes(tenantID: tenantID, tokenID: tokenID, eventID: eventID)
        guard !outcomes.isEmpty else { return (rows.count, false) }
        let answered = rows.compactMap { row in outcomes[Key(row)].map { (row: row, outcome: $0) } }
        let stale = try await self.ledger.complete(tenantID: tenantID, tokenID: tokenID, answered)
        return (rows.count - answered.count, stale)
    }

    /// Each assignment's outcome, from the event's ASSET_MANAGEMENT notifications (a later one wins).
    func assetOutcomes(tenantID: UUID, tokenID: UUID, eventID: String) async throws -> [Key: OutboxOutcome] {
        var outcomes: [Key: OutboxOutcome] = [:]
        for received in try await self.tokens.eventNotifications(tenantID: tenantID, tokenID, eventID: eventID)
        where received.type == NotificationType.assetManagement.rawValue {
            guard
                let envelope = try? NotificationEnvelope<AssetManagementNotification>.decode(Data(received.body.utf8))
            else { continue }
            let outcome = Self.outcome(envelope.notification.result, envelope.notification.error)
            for assignment in envelope.notification.assignments ?? [] { outcomes[Key(assignment)] = outcome }
        }
        return outcomes
    }

    /// Each user's outcome in a users event, from its USER_MANAGEMENT notifications.
    public func userOutcomes(tenantID: UUID, tokenID: UUID, eventID: String) async throws -> [String: OutboxOutcome] {
        var outcomes: [String: OutboxOutcome] = [:]
        for received in try await self.tokens.eventNotifications(tenantID: tenantID, tokenID, eventID: eventID)
        where received.type == NotificationType.userManagement.rawValue {
            guard
                let envelope = try? NotificationEnvelope<UserManagementNotification>.decode(Data(received.body.utf8))
            else { continue }
            let outcome = Self.outcome(envelope.notification.result, envelope.notification.error)
            for user in envelope.notification.users ?? [] { outcomes[user.clientUserId] = outcome }
            for id in envelope.notification.error?.errorInfo?.clientUserIds ?? [] { outcomes[id] = outcome }
        }
        return outcomes
    }

    static func outcome(_ result: NotificationResult, _ error: ErrorResponse?) -> OutboxOutcome {
        guard result == .failure else { return .done }
        let number = error?.errorNumber ?? AppleVPPError.Number.internalError
        return .failed(errorNumber: number, message: error?.errorMessage ?? "error \(number)")
    }
}
