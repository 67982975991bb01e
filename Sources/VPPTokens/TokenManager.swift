public import AppleVPP
public import Foundation
public import Logging
import VPPClock
import VPPLogKeys
public import VPPPostgres
public import VPPStorage
public import VPPSync

/// Who this installation is at Apple: the `mdmInfo` every token is claimed with (R4).
public enum PlatformIdentity {
    public static let name = "VPP License Server"

    public static func mdmInfo(id: UUID, version: String) -> MDMInfo {
        MDMInfo(id: id.lowercasedText, name: name, metadata: version)
    }
}

/// Apple could not be reached or answered with an error that may heal: the caller should retry later (UNAVAILABLE).
public struct AppleUnavailableError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var retryAfterSeconds: Double?
    public var description: String { message }
}

/// The token operations that talk to Apple (upload, renew, delete), on top of `TokenStore`.
public struct TokenManager: Sendable {
    public let store: TokenStore
    let storage: Storage
    let apple: AppleVPPClient
    let identity: MDMInfo
    let scheduleInterval: Duration
    /// Registers each token's notifications at upload and renewal (nil: notifications are off).
    let notifications: NotificationSubscriber?
    let logger: Logger
    let now: @Sendable () -> Date

    /// The largest `.vpptoken` file accepted; real ones are well under 2 KiB.
    public static let maxTokenFileBytes = 16 * 1024

    public init(
        store: TokenStore,
        storage: Storage,
        apple: AppleVPPClient,
        identity: MDMInfo,
        scheduleInterval: Duration,
        notifications: NotificationSubscriber? = nil,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.storage = storage
        self.apple = apple
        self.identity = identity
        self.scheduleInterval = scheduleInterval
        self.notifications = notifications
        self.logger = logger
        self.now = now
    }

    public struct Upload: Sendable {
        public var token: TokenRecord
        /// Set when the token was taken over from another MDM: its name as Apple reported it.
        public var previousMDM: String?
    }

    /// R1: validates the file, refuses an expired one, reads the client config from Apple, stores the token (C4, C5)
    /// and claims it for this service. Another MDM's token is refused (R4) unless `takeOver`.
    ///
    /// The steps span the database and Apple, so each is resumable (issue 16): `queueFirstSync` runs in the
    /// transaction that stores the token, before the claim (the caller queues the first sync there, which claims a
    /// token nobody claims), so a call cut at any point, or a process killed, leaves either nothing or a token whose
    /// sync finishes it; a claim Apple refuses removes the token again, whatever happens to the call meanwhile.
    /// Uploading the same file again for the same location is the same token: the retry of a call whose answer was
    /// lost gets it back, and claims it once more. A take-over queues its sync (`queueFirstSync` with no
    /// transaction) only once the claim is made: before, the sync would find the other MDM's claim.
    public func upload(
        tenantID: UUID,
        file: [UInt8],
        appleID: String,
        accountType: TokenRecord.AccountType?,
        displayName: String,
        takeOver: Bool,
        queueFirstSync: @escaping @Sendable (_ tokenID: UUID, PostgresTransaction?) async throws -> Void = { _, _ in }
    ) async throws -> Upload {
        let token = try self.parse(file)
        let appleID = try Self.validateAppleID(appleID)
        guard let accountType else {
            throw StorageError.invalidArgument(
                "account_type is required: BUSINESS (Apple Business Manager) or EDUCATION (Apple School Manager).",
                field: "account_type"
            )
        }
        let name = try Self.validateDisplayName(displayName.isEmpty ? token.orgName : displayName)
        try await self.storage.requireActive(tenantID)

        let session = self.apple.session(token: token)
        let config = try await self.appleCall { try await session.clientConfig() }
        guard let locationUID = config.uId, !locationUID.isEmpty else {
            throw AppleUnavailableError(
                message: "Apple's client config did not name the token's location; retry later."
            )
        }
        var previousMDM: String?
        if let holder = config.mdmInfo, AppleVPPSession.isForeign(holder, own: self.identity) {
            guard takeOver else { throw Self.claimedElsewhere(holder.name) }
            previousMDM = holder.name
        }
        let interval = self.scheduleInterval.inSeconds
        var inTransaction: (@Sendable (UUID, PostgresTransaction) async throws -> Void)?
        if previousMDM == nil {
            inTransaction = { tokenID, transaction in try await queueFirstSync(tokenID, transaction) }
        }
        let record: TokenRecord
        do {
            record = try await self.store.insert(
                tenantID: tenantID,
                NewToken(
                    displayName: name,
                    appleID: appleID,
                    accountType: accountType,
                    organizationName: token.orgName,
                    locationUID: locationUID,
                    locationName: config.locationName ?? "",
                    countryCode: config.countryISO2ACode ?? "",
                    expiresAt: token.expirationDate,
                    credential: token.bearerCredential,
                    // R7: the first sync runs at once (queued by the caller); scheduled ones are spread over the interval.
                    firstSyncAt: self.now().addingTimeInterval(Double.random(in: 0.5...1.0) * interval)
                ),
                alsoInTransaction: inTransaction
            )
        } catch let error as StorageError {
            // The same file for a location this tenant holds: a retry of an upload whose answer was lost.
            guard case .alreadyExists = error,
                let existingID = try await self.store.tokenID(tenantID: tenantID, locationUID: locationUID),
                try await self.store.credential(tenantID: tenantID, existingID).credential == token.bearerCredential
            else { throw error }
            record = try await self.store.get(tenantID: tenantID, existingID)
            if previousMDM == nil { try await queueFirstSync(record.id, nil) }
        }
        // A take-over queues the sync only once the claim is made: before it, the sync would find the other MDM's
        // claim and mark the token claimed elsewhere (a cut take-over is finished by uploading it again).
        do {
            let claimed = try await self.appleCall {
                try await self.claim(session, tenantID: tenantID, tokenID: record.id)
            }
            if let holder = claimed.mdmInfo, AppleVPPSession.isForeign(holder, own: self.identity) {
                throw AppleUnavailableError(message: "Apple did not record this service's claim on the token; retry.")
            }
        } catch {
            // Cut (a deadline, the shutdown grace): the first sync, already queued, claims the token. Refused by Apple:
            // the token goes, in a task of its own so that the call's cancellation cannot stop it half-way.
            if !Task.isCancelled {
                let store = self.store
                _ = try? await Task { try await store.delete(tenantID: tenantID, record.id) }.value
            }
            throw error
        }
        if previousMDM != nil { try await queueFirstSync(record.id, nil) }
        self.logger.notice(
            "VPP token uploaded",
            metadata: [
                LogKey.tenantID: "\(tenantID)", LogKey.tokenID: "\(record.id)", LogKey.location: "\(locationUID)",
                LogKey.tookOverFrom: "\(previousMDM ?? "")",
            ]
        )
        return Upload(token: record, previousMDM: previousMDM)
    }

    /// R3: a new file for the same location replaces the old one; apps, assignments and licenses stay.
    public func renew(tenantID: UUID, tokenID: UUID, file: [UInt8]) async throws -> TokenRecord {
        let token = try self.parse(file)
        let existing = try await self.store.get(tenantID: tenantID, tokenID)
        let session = self.apple.session(token: token)
        let config = try await self.appleCall { try await session.clientConfig() }
        guard config.uId == existing.locationUID else {
            throw StorageError.failedPrecondition(
                "This token file is for another Apple location than the token it should renew (R3); upload it as a new token instead.",
                reason: "TOKEN_LOCATION_MISMATCH"
            )
        }
        if let holder = config.mdmInfo, AppleVPPSession.isForeign(holder, own: self.identity) {
            throw Self.claimedElsewhere(holder.name)
        }
        let renewed = try await self.store.renew(
            tenantID: tenantID,
            tokenID,
            credential: token.bearerCredential,
            expiresAt: token.expirationDate,
            organizationName: token.orgName,
            locationName: config.locationName ?? ""
        )
        // Claimed again when nobody claims it; notifications registered again (issue 18) with the new file.
        if config.mdmInfo == nil || self.notifications != nil {
            _ = try await self.appleCall { try await self.claim(session, tenantID: tenantID, tokenID: tokenID) }
        }
        return renewed
    }

    /// Claims the token for this service, registering its notifications when they are on.
    func claim(_ session: AppleVPPSession, tenantID: UUID, tokenID: UUID) async throws -> ClientConfigResponse {
        guard let notifications = self.notifications else { return try await session.claim(self.identity) }
        return try await notifications.claim(session, identity: self.identity, tenantID: tenantID, tokenID: tokenID)
    }

    // MARK: Validation

    func parse(_ file: [UInt8]) throws -> ServiceToken {
        guard file.count <= Self.maxTokenFileBytes else {
            throw StorageError.invalidArgument(
                "token_file is \(file.count) bytes; a .vpptoken file is at most \(Self.maxTokenFileBytes).",
                field: "token_file"
            )
        }
        do {
            return try ServiceToken(fileContents: file, now: self.now())
        } catch .expired(let date) {
            throw StorageError.failedPrecondition(
                "The token expired on \(AppleDate.format(date)); download a new .vpptoken file from Apple Business Manager or Apple School Manager (R3).",
                reason: "TOKEN_EXPIRED"
            )
        } catch {
            throw StorageError.invalidArgument(error.description, field: "token_file")
        }
    }

    static func validateAppleID(_ text: String) throws -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...320).contains(trimmed.count),
            !trimmed.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else {
            throw StorageError.invalidArgument(
                "apple_id is required: the Apple ID of the VPP account that downloaded the token (R1).",
                field: "apple_id"
            )
        }
        return trimmed
    }

    static func validateDisplayName(_ text: String) throws -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.count <= 200, !trimmed.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else {
            throw StorageError.invalidArgument(
                "display_name must be at most 200 characters, without control characters.",
                field: "display_name"
            )
        }
        return trimmed
    }

    static func claimedElsewhere(_ name: String) -> StorageError {
        .failedPrecondition(
            "This token is in use by another MDM (\(name.isEmpty ? "unnamed" : name)). One token used by two products loses license assignments and user records (R4): download a new token for this service, or upload again with take_over to move the token here; the other MDM then loses control of the licenses and users of this location.",
            reason: "TOKEN_CLAIMED_ELSEWHERE"
        )
    }

    /// Runs a call to Apple and turns its errors into what the caller should see.
    func appleCall<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as AppleVPPError {
            throw Self.map(error)
        }
    }

    static func map(_ error: AppleVPPError) -> any Error {
        switch error.errorNumber {
        case AppleVPPError.Number.tokenExpired:
            return StorageError.failedPrecondition(
                "Apple says this token has expired; download a new .vpptoken file (R3).",
                reason: "TOKEN_EXPIRED"
            )
        case AppleVPPError.Number.tokenRevoked:
            return StorageError.failedPrecondition(
                "Apple says this token was revoked (a newer token was downloaded, or the account changed); download a new .vpptoken file.",
                reason: "TOKEN_REVOKED"
            )
        case AppleVPPError.Number.invalidToken, AppleVPPError.Number.badAuthorizationHeader:
            return StorageError.failedPrecondition(
                "Apple does not accept this token; download a new .vpptoken file.",
                reason: "TOKEN_INVALID"
            )
        default:
            return AppleUnavailableError(
                message: "Apple's VPP service did not complete the request (\(error)); retry later.",
                retryAfterSeconds: error.retryAfterSeconds
            )
        }
    }
}
