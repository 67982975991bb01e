public import AppleVPP
public import Foundation
import NIOConcurrencyHelpers

/// The simulated Apple service without HTTP: the state of every location and token, the v2 API's rules, faults and
/// the request log. `AppleVPPSimulator` puts it on a port; tests may also drive it directly.
///
/// All state sits behind one lock, held only for in-memory work (a page is sliced under it and encoded after).
/// Notifications are produced under it (into `State.outbox`) and sent once it is released, by background tasks that
/// `shutdown()` stops.
public final class SimulatorCore: Sendable {
    struct TokenRecord: Sendable {
        var uId: String
        var expirationDate: Date
        var revoked = false
    }

    struct State: Sendable {
        var locations: [String: LocationState] = [:]
        var tokens: [String: TokenRecord] = [:]
        var publicApps: [String: ContentMetadata] = [:]
        var faults: [SimulatorFault] = []
        var requests: [RecordedRequest] = []
        var baseURL = "http://127.0.0.1"

        // Notifications (SimulatorCore+Notifications.swift).
        var notificationFaults: [ActiveNotificationFault] = []
        /// Produced and not yet handed to delivery.
        var outbox: [OutgoingNotification] = []
        var notificationLog = NotificationLog()
        /// Logged `pending`: queued, being delivered or waiting for a retry.
        var pendingNotifications = 0
        var notificationsDroppedForQueueLimit = 0
        /// Background work (deliveries, event completions) that `shutdown()` cancels.
        var tasks: [Int: Task<Void, Never>] = [:]
        var nextTaskId = 0
        var shutDown = false
    }

    public let configuration: SimulatorConfiguration
    let started = ContinuousClock.now
    let state = NIOLockedValueBox(State())
    static let maxRecordedRequests = 100_000
    let sender = NotificationSender()

    public init(configuration: SimulatorConfiguration = .init(), fixture: SimulatorFixture? = nil) throws {
        self.configuration = configuration
        if let fixture { try load(fixture) }
    }

    /// The URL the simulator's API answers on (`.../mdm/v2`); service config's URLs point here.
    public var baseURL: String { state.withLockedValue { $0.baseURL } }

    /// Sets the URL service config points at (the program calls it once it knows its port).
    public func setBaseURL(_ url: String) { state.withLockedValue { $0.baseURL = url } }

    // MARK: Control: locations and tokens

    /// Loads a fixture; returns the location ids and a token for each.
    @discardableResult
    public func load(_ fixture: SimulatorFixture) throws -> [(uId: String, vppToken: String)] {
        if let apps = fixture.publicApps { addPublicApps(apps) }
        return try (fixture.locations ?? []).map { try createLocation($0) }
    }

    /// Creates a location from a fixture. Returns its `uId` and the `.vpptoken` file body of its first token.
    public func createLocation(_ fixture: SimulatorFixture.Location) throws -> (uId: String, vppToken: String) {
        let uId = fixture.uId ?? String(Int.random(in: 1_000_000_000_000_000...9_000_000_000_000_000))
        var location = LocationState(uId: uId, fixture: fixture)
        for asset in fixture.assets ?? [] {
            location.addPurchase(
                adamId: asset.adamId,
                pricingParam: asset.pricingParam ?? .standard,
                productType: asset.productType ?? .app,
                count: asset.totalCount ?? 0,
                deviceAssignable: asset.deviceAssignable ?? ((asset.productType ?? .app) == .app),
                revocable: asset.revocable ?? ((asset.productType ?? .app) == .app),
                unlimited: asset.unlimited ?? false,
                supportedPlatforms: asset.supportedPlatforms ?? ["iOS"],
                retiredCount: asset.retiredCount ?? 0
            )
        }
        for user in fixture.users ?? [] {
            location.putUser(
                clientUserId: user.clientUserId,
                email: user.email,
                status: user.status ?? .registered,
                managedAppleId: nil
            )
        }
        for assignment in fixture.assignments ?? [] {
            guard let key = Self.assignmentKey(assignment, in: location) else {
                throw SimulatorControlError(
                    "fixture assignment of \(assignment.adamId) names no owned asset or no subject"
                )
            }
            location.insertAssignment(key)
        }
        let fixtureTokens = fixture.tokens ?? [SimulatorFixture.Token()]
        var issued: [String] = []
        try state.withLockedValue { state in
            guard state.locations[uId] == nil else { throw SimulatorControlError("location \(uId) exists already") }
            state.locations[uId] = location
            for token in fixtureTokens {
                let expiry =
                    try token.expDate.map {
                        guard let date = AppleDate.parse($0) else { throw SimulatorControlError("bad expDate \($0)") }
                        return date
                    } ?? Date().addingTimeInterval(365 * 24 * 3600)
                issued.append(
                    Self.issue(in: &state, uId: uId, orgName: location.orgName, expires: expiry, secret: token.token)
                )
            }
        }
        return (uId, issued[0])
    }

    /// Issues another token for a location; returns the `.vpptoken` file body (the bearer credential).
    public func issueToken(uId: String, expires: Date = Date().addingTimeInterval(365 * 24 * 3600)) throws -> String {
        try state.withLockedValue { state in
            guard let location = state.locations[uId] else { throw SimulatorControlError("no location \(uId)") }
            return Self.issue(in: &state, uId: uId, orgName: location.orgName, expires: expires, secret: nil)
        }
    }

    private static func issue(in state: inout State, uId: String, orgName: String, expires: Date, secret: String?)
        -> String
    {
        let secret = secret ?? Data((0..<48).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let json: [String: String] = ["token": secret, "expDate": AppleDate.format(expires), "orgName": orgName]
        let data = try! JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        let vppToken = data.base64EncodedString()
        state.tokens[vppToken] = TokenRecord(uId: uId, expirationDate: expires)
        return vppToken
    }

    /// Makes a token expired from now on (the simulator then answers 9621).
    public func expireToken(_ vppToken: String) throws {
        try updateToken(vppToken) { $0.expirationDate = Date().addingTimeInterval(-1) }
    }

    /// Revokes a token (the simulator then answers 9625).
    public func revokeToken(_ vppToken: String) throws {
        try updateToken(vppToken) { $0.revoked = true }
    }

    private func updateToken(_ vppToken: String, _ change: (inout TokenRecord) -> Void) throws {
        let key = vppToken.filter { !$0.isWhitespace }
        try state.withLockedValue { state in
            guard var record = state.tokens[key] else { throw SimulatorControlError("unknown token") }
            change(&record)
            state.tokens[key] = record
        }
    }

    // MARK: Control: library, users, ownership

    /// Adds licenses (a purchase), creating the asset when it is new. Sends `ASSET_COUNT` (`countDelta` +`count`;
    /// none for a free, unlimited asset), as Apple notifies purchases (reference §3).
    public func addPurchase(
        uId: String,
        adamId: String,
        pricingParam: PricingParam = .standard,
        productType: ProductType = .app,
        count: Int,
        deviceAssignable: Bool = true,
        revocable: Bool = true,
        unlimited: Bool = false,
        supportedPlatforms: [String] = ["iOS"]
    ) throws {
        try withLocation(uId) {
            $0.addPurchase(
                adamId: adamId,
                pricingParam: pricingParam,
                productType: productType,
                count: count,
                deviceAssignable: deviceAssignable,
                revocable: revocable,
                unlimited: unlimited,
                supportedPlatforms: supportedPlatforms
            )
            let key = AssetKey(adamId: adamId, pricingParam: pricingParam)
            if $0.assets[key]?.unlimited == false { $0.notifyAssetCount(key, countDelta: count) }
        }
    }

    /// Takes `count` licenses of an asset away, as a refund (or a transfer to another location) does: `totalCount`
    /// drops by `count`. Apple revokes nothing on its own: assignments stay, so `assignedCount` may exceed `totalCount`
    /// until seats are given back, and meanwhile new associations are refused (9709). Refused for an asset the location
    /// does not own, an unlimited (free) one, or more licenses than it has. Sends `ASSET_COUNT` (`countDelta`
    /// −`count`).
    public func refund(uId: String, adamId: String, pricingParam: PricingParam = .standard, count: Int) throws {
        try withLocation(uId) {
            try $0.refund(adamId: adamId, pricingParam: pricingParam, count: count)
            $0.notifyAssetCount(AssetKey(adamId: adamId, pricingParam: pricingParam), countDelta: -count)
        }
    }

    /// Assignments made by someone else (another MDM, Apple Business Manager): applied at once, counted. Sends
    /// `ASSET_MANAGEMENT` SUCCESS (type ASSOCIATE, an eventId of its own) listing the new ones: Apple notifies events
    /// the MDM did not start too (reference §3). All or nothing: refused before any change when one names no owned
    /// asset or no subject.
    public func addAssignments(uId: String, _ assignments: [AppleVPP.Assignment]) throws {
        try withLocation(uId) { location in
            let keys = try assignments.map { assignment in
                guard let key = Self.assignmentKey(assignment, in: location) else {
                    throw SimulatorControlError("assignment of \(assignment.adamId) names no owned asset or no subject")
                }
                return key
            }
            let added = keys.filter { location.insertAssignment($0) }
            if !added.isEmpty {
                location.notifyAssetManagement(eventId: Self.newEventId(), type: .associate, done: added)
            }
        }
    }

    /// `count` device assignments of one asset to serials `prefix0`, `prefix1`, ... at once; for large-scale tests.
    /// Licenses are added as needed so the counts stay consistent (an `ASSET_COUNT` says so). Sends
    /// `ASSET_MANAGEMENT` SUCCESS for the new assignments, as `addAssignments` does.
    public func addDeviceAssignments(uId: String, adamId: String, count: Int, serialPrefix: String = "SIM") throws {
        try withLocation(uId) { location in
            let key = AssetKey(adamId: adamId, pricingParam: .standard)
            guard let asset = location.assets[key] else { throw SimulatorControlError("no asset \(adamId)") }
            if !asset.unlimited, asset.availableCount < count {
                location.assets[key]?.totalCount += count - asset.availableCount
                location.notifyAssetCount(key, countDelta: count - asset.availableCount)
            }
            location.assignmentRows.reserveCapacity(location.assignmentRows.count + count)
            let notifying = location.wants(.assetManagement)
            var added: [AssignmentKey] = []
            for index in 0..<count {
                let assignment = AssignmentKey(asset: key, subject: .device("\(serialPrefix)\(index)"))
                if location.insertAssignment(assignment), notifying { added.append(assignment) }
            }
            if !added.isEmpty {
                location.notifyAssetManagement(eventId: Self.newEventId(), type: .associate, done: added)
            }
        }
    }

    /// Users created by someone else (another MDM): applied at once.
    public func addUsers(uId: String, _ users: [SimulatorFixture.User]) throws {
        try withLocation(uId) { location in
            for user in users {
                location.putUser(
                    clientUserId: user.clientUserId,
                    email: user.email,
                    status: user.status ?? .registered,
                    managedAppleId: nil
                )
            }
        }
    }

    /// The user accepts their invitation: Registered → Associated. Sends `USER_ASSOCIATED` with the user as
    /// `GET /users` shows it now (reference §2.8, §3).
    public func acceptInvitation(uId: String, clientUserId: String) throws {
        try withLocation(uId) { location in
            guard location.acceptInvitation(clientUserId: clientUserId) else {
                throw SimulatorControlError("no Registered user \(clientUserId)")
            }
            location.notifyUserAssociated([clientUserId])
        }
    }

    /// Another MDM claims the token (sets `mdmInfo`); `nil` clears it. Sends nothing.
    public func setMDMInfo(uId: String, _ mdmInfo: MDMInfo?) throws {
        try withLocation(uId) { $0.mdmInfo = mdmInfo }
    }

    /// A rival MDM rewrites the location's client config, as its own `POST /client/config` at Apple would, with no
    /// check, no `TEST_NOTIFICATION` and no word to anyone: Apple tells the MDM that loses the token nothing, only
    /// `GET /client/config` (and `mdmInfo` on every answer) shows it (reference §7). Notifications produced from now
    /// on go to the new URL with the new token. A nil argument leaves that field as it is; an empty
    /// `notificationUrl` or `notificationAuthToken` clears it (`setMDMInfo(uId:nil)` clears `mdmInfo`).
    public func setClientConfig(
        uId: String,
        mdmInfo: MDMInfo? = nil,
        notificationUrl: String? = nil,
        notificationAuthToken: String? = nil,
        notificationTypes: [String]? = nil
    ) throws {
        try withLocation(uId) { location in
            if let mdmInfo { location.mdmInfo = mdmInfo }
            if let notificationUrl { location.notificationUrl = notificationUrl.isEmpty ? nil : notificationUrl }
            if let notificationAuthToken {
                location.notificationAuthToken = notificationAuthToken.isEmpty ? nil : notificationAuthToken
            }
            if let notificationTypes { location.subscribedNotificationTypes = notificationTypes }
        }
    }

    /// Processes pending events now (all locations, or one), sending their notifications.
    public func processPendingEvents(uId: String? = nil) {
        state.withLockedValue { state in
            let now = secondsSinceStart
            for id in state.locations.keys where uId == nil || uId == id {
                state.locations[id]!.processEvents(through: nil)
                state.collectNotifications(of: id, atSeconds: now)
            }
        }
        flushNotifications()
    }

    /// Apps the public content-metadata lookup knows.
    public func addPublicApps(_ apps: [ContentMetadata]) {
        state.withLockedValue { state in
            for app in apps { state.publicApps[app.adamId] = app }
        }
    }

    /// Injects a fault into the next matching API requests.
    public func injectFault(_ fault: SimulatorFault) {
        state.withLockedValue { $0.faults.append(fault) }
    }

    public func clearFaults() {
        state.withLockedValue { $0.faults.removeAll() }
    }

    /// The faults injected and not yet used up (a fault's `count` falls as requests take it).
    public func pendingFaults() -> [SimulatorFault] {
        state.withLockedValue { $0.faults }
    }

    /// The API requests seen so far (the newest 100,000).
    public func recordedRequests() -> [RecordedRequest] {
        state.withLockedValue { $0.requests }
    }

    public func clearRecordedRequests() {
        state.withLockedValue { $0.requests.removeAll() }
    }

    /// A read-only look at a location's counts, for tests: (assigned, available) per adamId/pricingParam.
    public func assetCounts(uId: String) -> [String: (assigned: Int, available: Int, total: Int)] {
        state.withLockedValue { state in
            var result: [String: (Int, Int, Int)] = [:]
            for asset in state.locations[uId]?.assets.values ?? [:].values {
                result["\(asset.key.adamId)/\(asset.key.pricingParam)"] = (
                    asset.assignedCount, asset.availableCount, asset.totalCount
                )
            }
            return result
        }
    }

    /// A read-only look at a location's assignments (every license Apple holds there), for tests.
    public func assignments(uId: String) throws -> [AppleVPP.Assignment] {
        try withLocation(uId) { location in
            location.assignmentRows.compactMap { $0?.key }.map { key in
                switch key.subject {
                case .user(let id):
                    AppleVPP.Assignment(
                        adamId: key.asset.adamId,
                        pricingParam: key.asset.pricingParam,
                        clientUserId: id
                    )
                case .device(let serial):
                    AppleVPP.Assignment(
                        adamId: key.asset.adamId,
                        pricingParam: key.asset.pricingParam,
                        serialNumber: serial
                    )
                }
            }
        }
    }

    /// A read-only look at a location's users as `GET /users` shows them (invite codes of invited users), for tests.
    public func users(uId: String) throws -> [ResponseUser] {
        try withLocation(uId) { location in location.users.values.sorted { $0.order < $1.order }.map(\.response) }
    }

    /// Runs `body` on a location under the lock, then sends the notifications it produced (also when it throws).
    func withLocation<T>(_ uId: String, _ body: (inout LocationState) throws -> T) throws -> T {
        defer { flushNotifications() }
        let now = secondsSinceStart
        return try state.withLockedValue { state in
            guard state.locations[uId] != nil else { throw SimulatorControlError("no location \(uId)") }
            defer { state.collectNotifications(of: uId, atSeconds: now) }
            return try body(&state.locations[uId]!)
        }
    }

    static func newEventId() -> String { UUID().uuidString.lowercased() }

    static func assignmentKey(_ assignment: AppleVPP.Assignment, in location: LocationState) -> AssignmentKey? {
        guard
            let asset = location.resolve(
                AssetReference(adamId: assignment.adamId, pricingParam: assignment.pricingParam)
            )
        else { return nil }
        if let id = assignment.clientUserId { return AssignmentKey(asset: asset, subject: .user(id)) }
        if let serial = assignment.serialNumber { return AssignmentKey(asset: asset, subject: .device(serial)) }
        return nil
    }
}

/// A control request the simulator refuses (HTTP 400 on the control API).
public struct SimulatorControlError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
