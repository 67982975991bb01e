import AppleVPP
import Foundation

struct AssetKey: Hashable, Sendable {
    var adamId: String
    var pricingParam: PricingParam
}

enum Subject: Hashable, Sendable {
    case user(String)
    case device(String)
}

struct AssignmentKey: Hashable, Sendable {
    var asset: AssetKey
    var subject: Subject
}

struct SimAsset: Sendable {
    var key: AssetKey
    var productType: ProductType
    var totalCount: Int
    var assignedCount: Int
    var retiredCount: Int
    var deviceAssignable: Bool
    var revocable: Bool
    var unlimited: Bool
    var supportedPlatforms: [String]

    var availableCount: Int { unlimited ? ResponseAsset.unlimitedTotalCount : max(0, totalCount - assignedCount) }
}

struct SimUser: Sendable {
    var clientUserId: String
    var email: String?
    var status: UserStatus
    var inviteCode: String?
    var idHash: String?
    var version: Int
    var order: Int

    var response: ResponseUser {
        ResponseUser(
            clientUserId: clientUserId,
            email: email,
            idHash: idHash,
            inviteCode: status == .registered ? inviteCode : nil,
            status: status
        )
    }
}

struct SimAssignmentRow: Sendable {
    var key: AssignmentKey
    var version: Int
}

enum EventWork: Sendable {
    case associate(assets: [AssetKey], subjects: [Subject])
    case disassociate(assets: [AssetKey], subjects: [Subject])
    case revoke(subjects: [Subject])
    case createUsers([RequestUser])
    case updateUsers([RequestUser])
    case retireUsers([String])
}

struct SimEvent: Sendable {
    var id: String
    var type: EventType
    var work: EventWork
    var status: EventStatus = .pending
    var numRequested: Int
    var numCompleted: Int = 0
    var failures: [ErrorResponse] = []
    var polls = 0
    var submitted: ContinuousClock.Instant
}

/// One organisational unit (location): its library, users, assignments and events. Plain state, no locking: the
/// simulator holds it under its lock.
struct LocationState: Sendable {
    var uId: String
    var locationName: String
    var orgName: String
    var countryISO2ACode: String
    var defaultPlatform: String
    var websiteURL: String
    var mdmInfo: MDMInfo?
    var notificationUrl: String?
    var notificationAuthToken: String?
    var subscribedNotificationTypes: [String] = []
    /// Notifications produced under the simulator's lock and not yet handed to delivery (`notify`).
    var outbox: [OutgoingNotification] = []

    var assets: [AssetKey: SimAsset] = [:]
    var assetOrder: [AssetKey] = []
    var users: [String: SimUser] = [:]
    var nextUserOrder = 0
    /// Assignments in the order they were made; removed ones leave `nil` until the next compaction, so a page is a
    /// slice and `sinceVersionId` a suffix.
    var assignmentRows: [SimAssignmentRow?] = []
    var assignmentIndex: [AssignmentKey: Int] = [:]
    var events: [String: SimEvent] = [:]
    var pendingEvents: [String] = []
    /// One counter for every change of assignments or users; `versionId` is its decimal text.
    var version = 1
    /// Matching assignments per query, valid for `queryCacheVersion`: paging through 100,000 assignments filters
    /// once, not once per page.
    var queryCache: [String: [Assignment]] = [:]
    var queryCacheVersion = 0

    init(uId: String, fixture: SimulatorFixture.Location) {
        self.uId = uId
        self.locationName = fixture.locationName ?? "Simulated Location \(uId)"
        self.orgName = fixture.orgName ?? locationName
        self.countryISO2ACode = fixture.countryISO2ACode ?? "US"
        self.defaultPlatform = fixture.defaultPlatform ?? "volumestore"
        self.websiteURL = fixture.websiteURL ?? "https://business.apple.com"
        self.mdmInfo = fixture.mdmInfo
    }

    // MARK: Assets

    mutating func addPurchase(
        adamId: String,
        pricingParam: PricingParam,
        productType: ProductType,
        count: Int,
        deviceAssignable: Bool,
        revocable: Bool,
        unlimited: Bool,
        supportedPlatforms: [String],
        retiredCount: Int = 0
    ) {
        let key = AssetKey(adamId: adamId, pricingParam: pricingParam)
        if var asset = assets[key] {
            asset.totalCount += count
            assets[key] = asset
        } else {
            assets[key] = SimAsset(
                key: key,
                productType: productType,
                totalCount: count,
                assignedCount: 0,
                retiredCount: retiredCount,
                deviceAssignable: deviceAssignable,
                revocable: revocable,
                unlimited: unlimited,
                supportedPlatforms: supportedPlatforms
            )
            assetOrder.append(key)
        }
        version += 1
    }

    mutating func refund(adamId: String, pricingParam: PricingParam, count: Int) throws {
        let key = AssetKey(adamId: adamId, pricingParam: pricingParam)
        guard var asset = assets[key] else {
            throw SimulatorControlError("the location owns no \(adamId) (\(pricingParam.rawValue))")
        }
        guard !asset.unlimited else {
            throw SimulatorControlError("\(adamId) is free (unlimited): there is nothing to refund")
        }
        guard count > 0, count <= asset.totalCount else {
            throw SimulatorControlError("cannot refund \(count) of \(asset.totalCount) licenses of \(adamId)")
        }
        asset.totalCount -= count
        assets[key] = asset
        version += 1
    }

    /// Resolves a request's asset to an owned one: without `pricingParam`, STDQ first, then any quality.
    func resolve(_ reference: AssetReference) -> AssetKey? {
        if let pricing = reference.pricingParam {
            let key = AssetKey(adamId: reference.adamId, pricingParam: pricing)
            return assets[key] == nil ? nil : key
        }
        let standard = AssetKey(adamId: reference.adamId, pricingParam: .standard)
        if assets[standard] != nil { return standard }
        return assetOrder.first { $0.adamId == reference.adamId }
    }

    // MARK: Assignments

    var liveAssignmentCount: Int { assignmentIndex.count }

    /// Adds an assignment now (fixtures, another MDM, processed events). `false` when it was already there.
    @discardableResult
    mutating func insertAssignment(_ key: AssignmentKey) -> Bool {
        guard assignmentIndex[key] == nil else { return false }
        version += 1
        assignmentIndex[key] = assignmentRows.count
        assignmentRows.append(SimAssignmentRow(key: key, version: version))
        assets[key.asset]?.assignedCount += 1
        return true
    }

    @discardableResult
    mutating func removeAssignment(_ key: AssignmentKey) -> Bool {
        guard let row = assignmentIndex.removeValue(forKey: key) else { return false }
        version += 1
        assignmentRows[row] = nil
        assets[key.asset]?.assignedCount -= 1
        if assignmentRows.count > 1024, assignmentRows.count > 2 * assignmentIndex.count { compactAssignments() }
        return true
    }

    private mutating func compactAssignments() {
        assignmentRows = assignmentRows.compactMap { $0 }
        assignmentIndex.removeAll(keepingCapacity: true)
        for (row, assignment) in assignmentRows.enumerated() { assignmentIndex[assignment!.key] = row }
    }

    func assignmentValue(_ row: SimAssignmentRow, includeUserState: Bool) -> Assignment {
        var assignment = Assignment(adamId: row.key.asset.adamId, pricingParam: row.key.asset.pricingParam)
        switch row.key.subject {
        case .user(let id):
            assignment.clientUserId = id
            if includeUserState, let user = users[id] {
                assignment.userStatus = user.status
                assignment.idHash = user.idHash
            }
        case .device(let serial):
            assignment.serialNumber = serial
        }
        return assignment
    }

    /// The assignments a query matches, in assignment order; cached until the next change.
    mutating func matchingAssignments(
        adamId: String?,
        clientUserId: String?,
        serialNumber: String?,
        pricingParam: PricingParam?,
        excludeInactiveUsers: Bool,
        includeUserState: Bool,
        sinceVersion: Int?
    ) -> [Assignment] {
        let cacheKey = [
            adamId ?? "", clientUserId ?? "", serialNumber ?? "", pricingParam?.rawValue ?? "",
            String(excludeInactiveUsers), String(includeUserState), sinceVersion.map(String.init) ?? "",
        ].joined(separator: "\u{1}")
        if queryCacheVersion != version {
            queryCache.removeAll()
            queryCacheVersion = version
        }
        if let cached = queryCache[cacheKey] { return cached }
        var result: [Assignment] = []
        result.reserveCapacity(assignmentIndex.count)
        for case let row? in assignmentRows {
            if let sinceVersion, row.version <= sinceVersion { continue }
            if let adamId, row.key.asset.adamId != adamId { continue }
            if let pricingParam, row.key.asset.pricingParam != pricingParam { continue }
            switch row.key.subject {
            case .user(let id):
                if serialNumber != nil { continue }
                if let clientUserId, id != clientUserId { continue }
                if excludeInactiveUsers, let user = users[id], user.status == .retired || user.status == .deleted {
                    continue
                }
            case .device(let serial):
                if clientUserId != nil { continue }
                if let serialNumber, serial != serialNumber { continue }
            }
            result.append(assignmentValue(row, includeUserState: includeUserState))
        }
        if queryCache.count >= 32 { queryCache.removeAll() }
        queryCache[cacheKey] = result
        return result
    }

    // MARK: Users

    mutating func putUser(clientUserId: String, email: String?, status: UserStatus, managedAppleId: String?) {
        version += 1
        var user =
            users[clientUserId]
            ?? SimUser(
                clientUserId: clientUserId,
                email: email,
                status: status,
                inviteCode: nil,
                idHash: nil,
                version: version,
                order: nextUserOrder
            )
        if users[clientUserId] == nil { nextUserOrder += 1 }
        user.email = email ?? user.email
        user.status = status
        user.version = version
        user.inviteCode = user.inviteCode ?? Self.randomCode(length: 32)
        if status == .associated || managedAppleId != nil {
            user.status = status == .retired ? .retired : .associated
            user.idHash = user.idHash ?? Self.randomCode(length: 28)
        }
        users[clientUserId] = user
    }

    /// The user accepts the invitation: Registered becomes Associated with an `idHash`.
    mutating func acceptInvitation(clientUserId: String) -> Bool {
        guard var user = users[clientUserId], user.status == .registered else { return false }
        version += 1
        user.status = .associated
        user.idHash = Self.randomCode(length: 28)
        user.version = version
        users[clientUserId] = user
        return true
    }

    static func randomCode(length: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<length).map { _ in alphabet.randomElement()! })
    }

    // MARK: Events

    mutating func submit(_ type: EventType, _ work: EventWork, requested: Int, now: ContinuousClock.Instant) -> String {
        let id = UUID().uuidString.lowercased()
        events[id] = SimEvent(id: id, type: type, work: work, numRequested: requested, submitted: now)
        pendingEvents.append(id)
        return id
    }

    /// Processes pending events in submission order, up to and including `eventId` (all of them when nil).
    mutating func processEvents(through eventId: String?) {
        while !pendingEvents.isEmpty {
            let id = pendingEvents.removeFirst()
            if var event = events[id] {
                process(&event)
                events[id] = event
            }
            if id == eventId { return }
        }
    }

    /// Processes the events submitted at or before `cutoff`.
    mutating func processEvents(submittedBefore cutoff: ContinuousClock.Instant) {
        while let id = pendingEvents.first, let event = events[id], event.submitted <= cutoff {
            processEvents(through: id)
        }
    }

    private mutating func process(_ event: inout SimEvent) {
        var failuresByNumber: [Int: (assets: Set<AssetKey>, users: Set<String>, serials: Set<String>)] = [:]
        // What the event's notifications list (only collected when the location wants them).
        let notifyAssets = wants(.assetManagement)
        let notifyUsers = wants(.userManagement)
        var doneAssignments: [AssignmentKey] = []
        var failedAssignments: [Int: [AssignmentKey]] = [:]
        var doneUsers: [String] = []
        var failedUsers: [Int: [String]] = [:]
        func fail(_ number: Int, _ asset: AssetKey?, _ subject: Subject?) {
            var entry = failuresByNumber[number] ?? ([], [], [])
            if let asset { entry.assets.insert(asset) }
            switch subject {
            case .user(let id): entry.users.insert(id)
            case .device(let serial): entry.serials.insert(serial)
            case nil: break
            }
            failuresByNumber[number] = entry
            if notifyAssets, let asset, let subject {
                failedAssignments[number, default: []].append(AssignmentKey(asset: asset, subject: subject))
            }
            if notifyUsers, asset == nil, case .user(let id) = subject { failedUsers[number, default: []].append(id) }
        }
        func done(_ key: AssignmentKey) {
            if notifyAssets { doneAssignments.append(key) }
        }
        func done(user id: String) {
            if notifyUsers { doneUsers.append(id) }
        }
        var completed = 0
        switch event.work {
        case .associate(let assetKeys, let subjects):
            for assetKey in assetKeys {
                for subject in subjects {
                    let key = AssignmentKey(asset: assetKey, subject: subject)
                    if assignmentIndex[key] != nil {
                        completed += 1
                        done(key)
                        continue
                    }
                    if case .user(let id) = subject {
                        guard let user = users[id], user.status != .retired, user.status != .deleted else {
                            fail(AppleVPPError.Number.registeredUserNotFound, assetKey, subject)
                            continue
                        }
                    }
                    guard let asset = assets[assetKey], asset.unlimited || asset.availableCount > 0 else {
                        fail(AppleVPPError.Number.notEnoughLicenses, assetKey, subject)
                        continue
                    }
                    insertAssignment(key)
                    completed += 1
                    done(key)
                }
            }
        case .disassociate(let assetKeys, let subjects):
            for assetKey in assetKeys {
                for subject in subjects {
                    let key = AssignmentKey(asset: assetKey, subject: subject)
                    removeAssignment(key)
                    completed += 1
                    done(key)
                }
            }
        case .revoke(let subjects):
            let wanted = Set(subjects)
            let keys = assignmentIndex.filter {
                wanted.contains($0.key.subject) && assets[$0.key.asset]?.revocable == true
            }.sorted { $0.value < $1.value }.map(\.key)
            for key in keys {
                removeAssignment(key)
                done(key)
            }
            completed = subjects.count
        case .createUsers(let requested):
            for user in requested {
                if let existing = users[user.clientUserId], existing.status != .retired,
                    existing.status != .deleted
                {
                    fail(AppleVPPError.Number.userAlreadyExists, nil, .user(user.clientUserId))
                    continue
                }
                putUser(
                    clientUserId: user.clientUserId,
                    email: user.email,
                    status: user.managedAppleId == nil ? .registered : .associated,
                    managedAppleId: user.managedAppleId
                )
                completed += 1
                done(user: user.clientUserId)
            }
        case .updateUsers(let requested):
            for request in requested {
                guard var user = users[request.clientUserId], user.status != .deleted else {
                    fail(AppleVPPError.Number.registeredUserNotFound, nil, .user(request.clientUserId))
                    continue
                }
                version += 1
                user.email = request.email ?? user.email
                if request.managedAppleId != nil, user.status == .registered {
                    user.status = .associated
                    user.idHash = Self.randomCode(length: 28)
                }
                user.version = version
                users[request.clientUserId] = user
                completed += 1
                done(user: request.clientUserId)
            }
        case .retireUsers(let ids):
            for id in ids {
                guard var user = users[id], user.status != .deleted else {
                    fail(AppleVPPError.Number.registeredUserNotFound, nil, .user(id))
                    continue
                }
                if user.status != .retired {
                    version += 1
                    user.status = .retired
                    user.version = version
                    users[id] = user
                    // Retiring releases the user's revocable licenses.
                    let keys = assignmentIndex.keys.filter {
                        $0.subject == .user(id) && assets[$0.asset]?.revocable == true
                    }
                    for key in keys { removeAssignment(key) }
                }
                completed += 1
                done(user: id)
            }
        }
        // Apple notifies each event's outcome (reference §3): assignments for ASSOCIATE, DISASSOCIATE and REVOKE,
        // users for CREATE, UPDATE and RETIRE.
        switch event.work {
        case .associate, .disassociate, .revoke:
            notifyAssetManagement(
                eventId: event.id,
                type: event.type,
                done: doneAssignments,
                failed: failedAssignments.keys.sorted().map { ($0, failedAssignments[$0]!) },
                successWhenEmpty: event.type == .revoke
            )
        case .createUsers, .updateUsers, .retireUsers:
            notifyUserManagement(
                eventId: event.id,
                type: event.type,
                done: doneUsers,
                failed: failedUsers.keys.sorted().map { ($0, failedUsers[$0]!) }
            )
        }
        event.numCompleted = completed
        event.failures = failuresByNumber.keys.sorted().map { number in
            let entry = failuresByNumber[number]!
            let assets = entry.assets.map { AssetReference(adamId: $0.adamId, pricingParam: $0.pricingParam) }
                .sorted { ($0.adamId, $0.pricingParam?.rawValue ?? "") < ($1.adamId, $1.pricingParam?.rawValue ?? "") }
            return ErrorResponse(
                errorNumber: number,
                errorMessage: AppleErrorCatalogue.messages[number],
                errorInfo: ErrorInfo(
                    assets: assets.isEmpty ? nil : assets,
                    clientUserIds: entry.users.isEmpty ? nil : entry.users.sorted(),
                    serialNumbers: entry.serials.isEmpty ? nil : entry.serials.sorted()
                )
            )
        }
        event.status = event.failures.isEmpty ? .complete : .failed
    }
}
