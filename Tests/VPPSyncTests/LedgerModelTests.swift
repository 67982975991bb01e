import AppleVPP
import AppleVPPSimulator
import Foundation
import Testing
import VPPClient
import VPPProto
import VPPStorage
import VPPSync
import VPPTestSupport
import VPPTesting
import VPPWire

// Issue 15: a model-based randomized test of the license ledger (R13-R23).
//
// Each sequence makes a fresh location at the simulator and a fresh tenant, fills a small directory (users with a
// user-affiliated device each, a few DEP devices, 2-4 groups) and then runs random operations, everything a client does
// over the RPC port (DirectoryService, AssignmentService, LicenseService, CatalogService, SyncService), Apple-side
// actions through the simulator core (purchases, refunds, accepted invitations), and push jobs killed mid-way (C6: the
// worker stops, Apple may or may not have taken the request it was sending; the job runs again when its lease runs out).
// After every step it waits until the pushes settle (the tenant's apple_outbox is empty, no push or sync job is active
// for the token) and checks:
//
//   1. R15: seats held <= bought, in the ledger and at Apple (after a refund: never more than were held then, and
//      none given out until the asset is back under its count);
//   2. R15/R16/R17: Apple's assignments of the asset are exactly the ledger's holders (no leak either way);
//   3. R15/R21: the model's holders and waiters; FIFO (no waiter is served while an earlier one still waits); free
//      seats mean nobody waits;
//   4. R23: every view agrees (GetLicenseCounts, Asset.counts from GetAsset and ListApps/ListBooks, GetLicenseUsage,
//      ListLicenses by state, GetUserStatus/GetDeviceStatus per target, each Assignment's counts);
//   5. R23: every entry says why (non-empty reason).
//
// Seeded and reproducible:
//   VPP_LEDGER_MODEL_SEED        the master seed (random when unset; printed on failure)
//   VPP_LEDGER_MODEL_SEQUENCES   sequences to run (default 8)
//   VPP_LEDGER_MODEL_STEPS       steps per sequence (default 30)
//   VPP_LEDGER_MODEL_LANES       how many lanes run the sequences side by side (default 8), each with its own
//                                server and simulator (faults are the simulator's): sequence n runs in lane n % lanes
//   VPP_LEDGER_MODEL_ONLY        run only this sequence number (1-based) of the seed
//   VPP_LEDGER_MODEL_BOOKS_REVOCABLE  0: books are not revocable, as at Apple (default: revocable in the fixture)
//   VPP_LEDGER_MODEL_KEEP_GOING  1: do not stop a sequence at its first failing step (the model adopts the server's
//                                ledger and goes on), and print a summary of the distinct discrepancies at the end
// e.g. VPP_LEDGER_MODEL_SEED=42 swift test --filter LedgerModel

// MARK: - Configuration and PRNG

/// Choosing operations with the shared SplitMix64 (VPPTestSupport): small, fast, deterministic.
extension SplitMix64 {
    /// 0..<n
    mutating func int(_ n: Int) -> Int {
        precondition(n > 0)
        return Int(next() % UInt64(n))
    }

    mutating func int(in range: ClosedRange<Int>) -> Int { range.lowerBound + int(range.count) }

    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }

    mutating func pick<T>(_ items: [T]) -> T? { items.isEmpty ? nil : items[int(items.count)] }

    mutating func subset<T>(_ items: [T], max: Int) -> [T] {
        var pool = items
        var chosen: [T] = []
        let count = pool.isEmpty ? 0 : int(in: 1...Swift.max(1, Swift.min(max, pool.count)))
        for _ in 0..<count { chosen.append(pool.remove(at: int(pool.count))) }
        return chosen
    }
}

struct LedgerModelConfig {
    var seed: UInt64
    var sequences: Int
    var steps: Int
    var only: Int?
    var lanes: Int
    var keepGoing: Bool
    /// Apple's books are not revocable; by default the fixture makes them revocable so that freed book seats can go
    /// back (set VPP_LEDGER_MODEL_BOOKS_REVOCABLE=0 for Apple's real behaviour).
    var booksRevocable: Bool

    static func fromEnvironment() -> LedgerModelConfig {
        let env = ProcessInfo.processInfo.environment
        return LedgerModelConfig(
            seed: env["VPP_LEDGER_MODEL_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64(Int64.max)),
            sequences: env["VPP_LEDGER_MODEL_SEQUENCES"].flatMap { Int($0) } ?? 8,
            steps: env["VPP_LEDGER_MODEL_STEPS"].flatMap { Int($0) } ?? 30,
            only: env["VPP_LEDGER_MODEL_ONLY"].flatMap { Int($0) },
            lanes: max(1, env["VPP_LEDGER_MODEL_LANES"].flatMap { Int($0) } ?? 8),
            keepGoing: env["VPP_LEDGER_MODEL_KEEP_GOING"] == "1",
            booksRevocable: env["VPP_LEDGER_MODEL_BOOKS_REVOCABLE"] != "0"
        )
    }
}

// MARK: - The model

/// A license target: a device (device licensing, by serial number) or a user (user licensing, by external id).
struct LedgerTarget: Hashable, Comparable, CustomStringConvertible {
    enum Kind: String {
        case device = "D"
        case user = "U"
    }
    var kind: Kind
    var key: String

    var description: String { "\(kind.rawValue):\(key)" }
    static func < (a: LedgerTarget, b: LedgerTarget) -> Bool { (a.key, a.kind.rawValue) < (b.key, b.kind.rawValue) }

    init(kind: Kind, key: String) {
        self.kind = kind
        self.key = key
    }

    init(_ entry: VppV1.LicenseEntry) {
        if entry.licenseType == .user {
            self.init(kind: .user, key: entry.userExternalId)
        } else {
            self.init(kind: .device, key: entry.serialNumber)
        }
    }
}

/// Where a target stands with an asset's seats.
enum SeatClass: String {
    case held  // reserved or granted: a seat counted here
    case removing  // R17: uninstall asked; still holds its seat
    case waiting  // R15: in line
    case available  // R21: offered, not asked for
    case notApplicable  // R20: the user's App Store app is disabled
    case refused  // Apple refused (ledger state failed): no seat

    var holdsSeat: Bool { self == .held || self == .removing }
}

enum InstallMark { case none, installed, failed }

struct ModelEntry {
    var seat: SeatClass
    var install: InstallMark = .none
    /// R21: the target asked for the app (RequestApp) while it was only offered.
    var requested = false
}

struct ModelAsset {
    var adamID: String
    var id = ""
    var isBook: Bool
    var bought: Int
    var entries: [LedgerTarget: ModelEntry] = [:]
    /// The waiters in line order (1 is next).
    var line: [LedgerTarget] = []

    var held: Int { entries.values.filter { $0.seat.holdsSeat }.count }
    var name: String { isBook ? "book \(adamID)" : "app \(adamID)" }
}

struct ModelUser {
    var externalID: String
    var id = ""  // our id: the client user id at Apple
    var appStoreDisabled: Bool
    var alive = true
    var acceptedAtApple = false
    /// Accepted at Apple and a sync has run since: the ledger knows (R20).
    var knownAssociated = false
}

struct ModelDevice {
    var serial: String
    var owner: String?  // external id of the owner (user-affiliated devices)
    var automated: Bool
    var alive = true
}

struct ModelGroup {
    var id = ""
    var externalID: String
    var isDeviceGroup: Bool
    var members: Set<String> = []
}

struct ModelAssignment {
    var id: String
    var asset: Int
    var group: Int
    var action: VppV1.AssignmentAction
    var type: VppV1.LicenseType
}

struct LedgerModel {
    var assets: [ModelAsset]
    var users: [String: ModelUser] = [:]
    var devices: [String: ModelDevice] = [:]
    var groups: [ModelGroup] = []
    var assignments: [ModelAssignment] = []

    var aliveUsers: [String] { users.values.filter(\.alive).map(\.externalID).sorted() }
    var aliveDevices: [String] { devices.values.filter(\.alive).map(\.serial).sorted() }

    /// The targets one assignment reaches (docs/licenses.md's table; R18: DEP devices never through a user).
    func targets(of assignment: ModelAssignment) -> Set<LedgerTarget> {
        let group = groups[assignment.group]
        var result: Set<LedgerTarget> = []
        for member in group.members {
            if group.isDeviceGroup {
                guard let device = devices[member], device.alive else { continue }
                if assignment.type == .device {
                    result.insert(.init(kind: .device, key: device.serial))
                } else if !device.automated, let owner = device.owner, users[owner]?.alive == true {
                    result.insert(.init(kind: .user, key: owner))
                }
            } else {
                guard let user = users[member], user.alive else { continue }
                if assignment.type == .user {
                    result.insert(.init(kind: .user, key: user.externalID))
                } else {
                    for device in devices.values
                    where device.alive && !device.automated && device.owner == user.externalID {
                        result.insert(.init(kind: .device, key: device.serial))
                    }
                }
            }
        }
        return result
    }

    static func rank(_ action: VppV1.AssignmentAction) -> Int {
        switch action {
        case .required: return 0
        case .available: return 1
        default: return 2
        }
    }

    /// The strongest action (0 required, 1 available, 2 uninstall) over every assignment that reaches each target.
    func reach(asset: Int) -> [LedgerTarget: Int] {
        var reach: [LedgerTarget: Int] = [:]
        for assignment in assignments where assignment.asset == asset {
            let rank = Self.rank(assignment.action)
            for target in targets(of: assignment) { reach[target] = min(reach[target] ?? 2, rank) }
        }
        return reach
    }

    func blocked(_ target: LedgerTarget) -> Bool { target.kind == .user && users[target.key]?.appStoreDisabled == true }

    /// The next ledger of every asset, from the current one (adopted from the server after the previous step) and the
    /// directory and assignments as they are now. `requests` are RequestApp calls of this step (R21).
    mutating func advance(requests: [(asset: Int, target: LedgerTarget)] = []) {
        for index in assets.indices {
            let reach = self.reach(asset: index)
            var asset = assets[index]
            for request in requests where request.asset == index {
                if asset.entries[request.target]?.seat == .available { asset.entries[request.target]?.requested = true }
            }
            var next: [LedgerTarget: ModelEntry] = [:]
            var joiners: [LedgerTarget] = []
            var kept: Set<LedgerTarget> = []
            for (target, entry) in asset.entries {
                guard let rank = reach[target] else { continue }  // no longer reached: released (immediate policy)
                var entry = entry
                switch (entry.seat, rank) {
                case (.held, 2): entry.seat = .removing  // R17
                case (.held, _): break  // keeps its seat (Required, or now only Available: the app stays)
                case (.removing, 0): entry.seat = .held  // Required again: the uninstall is called off
                case (.removing, _): break
                case (.waiting, 0): kept.insert(target)
                case (.waiting, 1):
                    if entry.requested { kept.insert(target) } else { entry.seat = .available }
                case (.waiting, _), (.available, 2), (.notApplicable, 2), (.refused, 2): continue
                case (.available, 0):
                    entry.seat = .waiting
                    joiners.append(target)
                case (.available, _):
                    if entry.requested {
                        entry.seat = .waiting
                        joiners.append(target)
                    }
                case (.notApplicable, _), (.refused, _): break
                }
                next[target] = entry
            }
            for (target, rank) in reach where asset.entries[target] == nil && rank < 2 {
                if blocked(target) {
                    next[target] = ModelEntry(seat: .notApplicable)
                } else if rank == 1 {
                    next[target] = ModelEntry(seat: .available)
                } else {
                    next[target] = ModelEntry(seat: .waiting)
                    joiners.append(target)
                }
            }
            // The line: waiters that stay keep their place; new ones queue behind them, ordered by key.
            var line = asset.line.filter { kept.contains($0) } + joiners.sorted()
            var free = asset.bought - next.values.filter { $0.seat.holdsSeat }.count
            while free > 0, !line.isEmpty {
                let served = line.removeFirst()
                next[served] = ModelEntry(seat: .held)
                free -= 1
            }
            asset.entries = next
            asset.line = line
            assets[index] = asset
        }
    }

    /// R23: the state every view should show for one entry.
    func display(_ target: LedgerTarget, _ entry: ModelEntry) -> VppV1.InstallState {
        switch entry.seat {
        case .held:
            switch entry.install {
            case .installed: return .installed
            case .failed: return .failed
            case .none:
                if target.kind == .user, users[target.key]?.knownAssociated != true { return .waitingForInvitation }
                return .pending
            }
        case .removing: return .removing
        case .waiting: return .waitingForLicense
        case .available: return .available
        case .notApplicable: return .notApplicable
        case .refused: return .failed
        }
    }
}

func stateName(_ state: VppV1.InstallState) -> String {
    switch state {
    case .unspecified: return "UNSPECIFIED"
    case .installed: return "INSTALLED"
    case .pending: return "PENDING"
    case .waitingForLicense: return "WAITING_FOR_LICENSE"
    case .waitingForInvitation: return "WAITING_FOR_INVITATION"
    case .failed: return "FAILED"
    case .notApplicable: return "NOT_APPLICABLE"
    case .removing: return "REMOVING"
    case .removed: return "REMOVED"
    case .available: return "AVAILABLE"
    case .unrecognized(let value): return "unrecognized(\(value))"
    }
}

func actionName(_ action: VppV1.AssignmentAction) -> String {
    switch action {
    case .required: return "REQUIRED"
    case .available: return "AVAILABLE"
    case .uninstall: return "UNINSTALL"
    default: return "?"
    }
}

struct LedgerModelStats {
    var killAttempts = 0
    var kills = 0
    var refunds = 0
    var refundsOver = 0

    static func += (a: inout Self, b: Self) {
        a.killAttempts += b.killAttempts
        a.kills += b.kills
        a.refunds += b.refunds
        a.refundsOver += b.refundsOver
    }

    var description: String {
        "pushes killed mid-way \(kills) (of \(killAttempts) tried), refunds \(refunds) (\(refundsOver) left an asset over its count)"
    }
}

// MARK: - One failure of an invariant

struct LedgerDiscrepancy {
    /// Which invariant and which views, e.g. "inv4 GetLicenseCounts.in_use vs ListLicenses": the summary groups by it.
    var category: String
    var detail: String
}

// MARK: - The runner of one sequence

final class LedgerModelRun {
    let env: SyncEnvironment
    let config: LedgerModelConfig
    let sequence: Int
    var random: SplitMix64
    var model: LedgerModel
    var steps: [String] = []
    var client: VPPClient!
    var tenantID = UUID()
    var tokenID = ""
    var uId = ""
    var discrepancies: [LedgerDiscrepancy] = []
    /// The server's line of each asset after the previous step (for the FIFO check).
    var previousLines: [[LedgerTarget]] = []
    /// R15 after a refund: the seats each asset held beyond its count, which may only go down (nothing is revoked, and
    /// nobody new gets a seat while the asset is over); 0 when it is not over.
    var overHeld: [Int] = []
    /// What the sequence exercised, for the summary line: push jobs killed mid-way, refunds (and those that left an
    /// asset over its count).
    var stats = LedgerModelStats()

    init(env: SyncEnvironment, config: LedgerModelConfig, sequence: Int, seed: UInt64) {
        self.env = env
        self.config = config
        self.sequence = sequence
        self.random = SplitMix64(seed: seed)
        self.model = LedgerModel(assets: [])
    }

    // MARK: Setup

    static let apps = [SyncEnvironment.pages, SyncEnvironment.freeApp]

    func setUp() async throws {
        // 1-2 apps with few licenses (contention is common), and sometimes a book (R13: books only REQUIRED).
        var assets: [ModelAsset] = []
        let appCount = random.int(in: 1...2)
        for adamID in Self.apps.prefix(appCount) {
            assets.append(ModelAsset(adamID: adamID, isBook: false, bought: random.int(in: 3...8)))
        }
        if random.chance(0.5) {
            assets.append(ModelAsset(adamID: SyncEnvironment.book, isBook: true, bought: random.int(in: 2...5)))
        }
        model = LedgerModel(assets: assets)
        overHeld = Array(repeating: 0, count: assets.count)

        let created = try env.core.createLocation(
            .init(
                locationName: "Model School \(sequence)",
                assets: assets.map {
                    .init(
                        adamId: $0.adamID,
                        productType: $0.isBook ? .book : .app,
                        totalCount: $0.bought,
                        deviceAssignable: !$0.isBook,
                        revocable: !$0.isBook || config.booksRevocable
                    )
                }
            )
        )
        uId = created.uId
        let (tenant, client) = try await env.tenant("Ledger model \(sequence) \(UUID().uuidString.prefix(8))")
        self.client = client
        tenantID = try #require(UUID(uuidString: tenant.id))
        let uploaded = try await env.upload(client, created.vppToken)
        tokenID = try #require(uploaded.token?.id)
        _ = try await env.waitForJob(client, jobID: uploaded.syncJobId) { !$0.isActive }
        for index in model.assets.indices {
            var request = VppV1.ListAssetsRequest()
            request.tokenId = tokenID
            request.query = model.assets[index].adamID
            let list =
                model.assets[index].isBook
                ? try await client.call(VppV1.CatalogService.ListBooks.self, request).assets
                : try await client.call(VppV1.CatalogService.ListApps.self, request).assets
            model.assets[index].id = try #require(list.first { $0.adamId == model.assets[index].adamID }).id
        }

        // Users, each with a user-affiliated device; some DEP devices (R18).
        let userCount = random.int(in: 3...6)
        var users = VppV1.UpsertUsersRequest()
        var devices = VppV1.UpsertDevicesRequest()
        for n in 1...userCount {
            let ext = "u\(n)"
            let disabled = n == userCount && random.chance(0.3)  // R20: sometimes one user has no App Store app
            model.users[ext] = ModelUser(externalID: ext, appStoreDisabled: disabled)
            var user = VppV1.UserInput()
            user.externalId = ext
            user.email = "\(ext)-\(sequence)@example.com"
            user.appStoreDisabled = disabled
            users.users.append(user)
            var device = VppV1.DeviceInput()
            device.serialNumber = "D-\(ext)"
            device.ownerExternalId = ext
            device.enrollment = .userAffiliated
            device.booksAppPresent = true
            devices.devices.append(device)
            model.devices[device.serialNumber] = ModelDevice(serial: device.serialNumber, owner: ext, automated: false)
        }
        for n in 1...random.int(in: 1...3) {
            var device = VppV1.DeviceInput()
            device.serialNumber = "DEP-\(n)"
            device.enrollment = .automated
            device.booksAppPresent = true
            devices.devices.append(device)
            model.devices[device.serialNumber] = ModelDevice(serial: device.serialNumber, owner: nil, automated: true)
        }
        _ = try await client.call(VppV1.DirectoryService.UpsertUsers.self, users)
        _ = try await client.call(VppV1.DirectoryService.UpsertDevices.self, devices)
        for ext in model.users.keys {
            var get = VppV1.GetEntryRequest()
            get.by = .key(ext)
            model.users[ext]?.id = try await client.call(VppV1.DirectoryService.GetUser.self, get).id.lowercased()
        }

        // 2-4 groups, at least one of each kind, with random members.
        let groupCount = random.int(in: 2...4)
        for n in 0..<groupCount {
            let isDevice = n == 0 ? false : (n == 1 ? true : random.chance(0.5))
            var create = VppV1.CreateGroupRequest()
            create.externalId = "g\(n + 1)"
            create.name = "Group \(n + 1)"
            create.kind = isDevice ? .device : .user
            let group = try await client.call(VppV1.DirectoryService.CreateGroup.self, create)
            var modelGroup = ModelGroup(id: group.id, externalID: create.externalId, isDeviceGroup: isDevice)
            let candidates = isDevice ? model.aliveDevices : model.aliveUsers
            let members = random.subset(candidates, max: candidates.count)
            if !members.isEmpty {
                var add = VppV1.GroupMembersRequest()
                add.groupId = group.id
                add.memberKeys = members
                _ = try await client.call(VppV1.DirectoryService.AddGroupMembers.self, add)
                modelGroup.members = Set(members)
            }
            model.groups.append(modelGroup)
        }
        steps.append(
            "setup: assets \(model.assets.map { "\($0.name) bought \($0.bought)" }.joined(separator: ", ")); users \(model.aliveUsers)"
                + "\(model.users.values.filter(\.appStoreDisabled).map { " (\($0.externalID): App Store disabled)" }.joined());"
                + " devices \(model.aliveDevices); groups \(model.groups.map { "\($0.externalID)[\($0.isDeviceGroup ? "device" : "user")] \($0.members.sorted())" }.joined(separator: ", "))"
        )
    }

    // MARK: Steps

    func groupName(_ index: Int) -> String {
        let group = model.groups[index]
        return "\(group.externalID)[\(group.isDeviceGroup ? "device" : "user")]"
    }

    /// Runs one random operation; returns false when its preconditions do not hold (another is drawn).
    func randomOperation() async throws -> Bool {
        let weights: [(String, Int)] = [
            ("create", 6), ("update", 4), ("delete", 2), ("addMembers", 5), ("removeMembers", 4), ("deleteUser", 1),
            ("deleteDevice", 1), ("report", 6), ("requestApp", 4), ("buy", 2), ("sync", 1), ("accept", 3),
            ("refund", 2), ("killPush", 3),
        ]
        var roll = random.int(weights.reduce(0) { $0 + $1.1 })
        var operation = ""
        for (name, weight) in weights {
            if roll < weight {
                operation = name
                break
            }
            roll -= weight
        }
        switch operation {
        case "create": return try await createAssignment()
        case "update": return try await updateAssignment()
        case "delete": return try await deleteAssignment()
        case "addMembers": return try await changeMembers(add: true)
        case "removeMembers": return try await changeMembers(add: false)
        case "deleteUser": return try await deleteUser()
        case "deleteDevice": return try await deleteDevice()
        case "report": return try await report()
        case "requestApp": return try await requestApp()
        case "buy": return try await buy()
        case "sync": return try await sync("sync")
        case "accept": return try await accept()
        case "refund": return try await refund()
        case "killPush": return try await killPush()
        default: return false
        }
    }

    /// One operation that gives the push work (outbox rows), for `killPush`.
    func outboxOperation() async throws -> Bool {
        switch random.int(6) {
        case 0: return try await createAssignment()
        case 1: return try await updateAssignment()
        case 2: return try await deleteAssignment()
        case 3: return try await changeMembers(add: true)
        case 4: return try await changeMembers(add: false)
        default: return try await report()
        }
    }

    func createAssignment() async throws -> Bool {
        let assetIndex = random.int(model.assets.count)
        let free = model.groups.indices.filter { group in
            !model.assignments.contains { $0.asset == assetIndex && $0.group == group }
        }
        guard let groupIndex = random.pick(free) else { return false }
        let asset = model.assets[assetIndex]
        let action: VppV1.AssignmentAction
        let type: VppV1.LicenseType
        if asset.isBook {
            action = .required  // R13
            type = .user
        } else {
            let roll = random.int(20)
            action = roll < 12 ? .required : (roll < 17 ? .available : .uninstall)
            type = random.chance(0.5) ? .device : .user
        }
        var request = VppV1.CreateAssignmentRequest()
        request.assetId = asset.id
        request.groupId = model.groups[groupIndex].id
        request.action = action
        request.licenseType = type
        let label =
            "CreateAssignment(\(asset.name) -> \(groupName(groupIndex)), \(actionName(action)), \(type == .user ? "USER" : "DEVICE"))"
        do {
            let created = try await client.call(VppV1.AssignmentService.CreateAssignment.self, request)
            model.assignments.append(
                ModelAssignment(id: created.id, asset: assetIndex, group: groupIndex, action: action, type: type)
            )
            steps.append("\(label) -> \(created.id.prefix(8))")
        } catch {
            steps.append("\(label) -> error \(error)")
            fail("op CreateAssignment refused", "\(label): \(error)")
        }
        model.advance()
        return true
    }

    func assignmentName(_ a: ModelAssignment) -> String {
        "\(model.assets[a.asset].name) -> \(groupName(a.group)) \(actionName(a.action)) \(a.type == .user ? "USER" : "DEVICE") (\(a.id.prefix(8)))"
    }

    func updateAssignment() async throws -> Bool {
        let candidates = model.assignments.indices.filter { !model.assets[model.assignments[$0].asset].isBook }
        guard let index = random.pick(candidates) else { return false }
        let current = model.assignments[index].action
        let action = random.pick(
            ([.required, .available, .uninstall] as [VppV1.AssignmentAction]).filter { $0 != current }
        )!
        var request = VppV1.UpdateAssignmentRequest()
        request.assignmentId = model.assignments[index].id
        request.action = action
        let label = "UpdateAssignment(\(assignmentName(model.assignments[index])) to \(actionName(action)))"
        do {
            _ = try await client.call(VppV1.AssignmentService.UpdateAssignment.self, request)
            model.assignments[index].action = action
            steps.append(label)
        } catch {
            steps.append("\(label) -> error \(error)")
            fail("op UpdateAssignment refused", "\(label): \(error)")
        }
        model.advance()
        return true
    }

    func deleteAssignment() async throws -> Bool {
        guard let index = random.pick(Array(model.assignments.indices)) else { return false }
        var request = VppV1.DeleteAssignmentRequest()
        request.assignmentId = model.assignments[index].id
        let label = "DeleteAssignment(\(assignmentName(model.assignments[index])))"
        do {
            let answer = try await client.call(VppV1.AssignmentService.DeleteAssignment.self, request)
            model.assignments.remove(at: index)
            steps.append("\(label) -> released \(answer.released), pending_release \(answer.pendingRelease)")
        } catch {
            steps.append("\(label) -> error \(error)")
            fail("op DeleteAssignment refused", "\(label): \(error)")
        }
        model.advance()
        return true
    }

    func changeMembers(add: Bool) async throws -> Bool {
        guard let groupIndex = random.pick(Array(model.groups.indices)) else { return false }
        let group = model.groups[groupIndex]
        let pool = group.isDeviceGroup ? model.aliveDevices : model.aliveUsers
        let candidates = add ? pool.filter { !group.members.contains($0) } : group.members.sorted()
        let keys = random.subset(candidates, max: 2)
        guard !keys.isEmpty else { return false }
        var request = VppV1.GroupMembersRequest()
        request.groupId = group.id
        request.memberKeys = keys
        let label = "\(add ? "AddGroupMembers" : "RemoveGroupMembers")(\(groupName(groupIndex)), \(keys))"
        do {
            if add {
                _ = try await client.call(VppV1.DirectoryService.AddGroupMembers.self, request)
                model.groups[groupIndex].members.formUnion(keys)
            } else {
                _ = try await client.call(VppV1.DirectoryService.RemoveGroupMembers.self, request)
                model.groups[groupIndex].members.subtract(keys)
            }
            steps.append(label)
        } catch {
            steps.append("\(label) -> error \(error)")
            fail("op \(add ? "AddGroupMembers" : "RemoveGroupMembers") refused", "\(label): \(error)")
        }
        model.advance()
        return true
    }

    func deleteUser() async throws -> Bool {
        let users = model.aliveUsers
        guard users.count > 2, let ext = random.pick(users) else { return false }
        var request = VppV1.DeleteEntriesRequest()
        request.keys = [ext]
        _ = try await client.call(VppV1.DirectoryService.DeleteUsers.self, request)
        model.users[ext]?.alive = false
        for index in model.groups.indices { model.groups[index].members.remove(ext) }
        // The user's devices stay, without an owner (owner_user_id ON DELETE SET NULL).
        for serial in model.devices.keys where model.devices[serial]?.owner == ext {
            model.devices[serial]?.owner = nil
        }
        steps.append("DeleteUsers([\(ext)])")
        model.advance()
        return true
    }

    func deleteDevice() async throws -> Bool {
        let devices = model.aliveDevices
        guard devices.count > 3, let serial = random.pick(devices) else { return false }
        var request = VppV1.DeleteEntriesRequest()
        request.keys = [serial]
        _ = try await client.call(VppV1.DirectoryService.DeleteDevices.self, request)
        model.devices[serial]?.alive = false
        for index in model.groups.indices { model.groups[index].members.remove(serial) }
        steps.append("DeleteDevices([\(serial)])")
        model.advance()
        return true
    }

    /// A device the app of `target` is on: the device itself, or a user-affiliated device of the user.
    func reportingDevice(for target: LedgerTarget) -> String? {
        switch target.kind {
        case .device: return model.devices[target.key]?.alive == true ? target.key : nil
        case .user:
            return model.devices.values.filter { $0.alive && !$0.automated && $0.owner == target.key }.map(\.serial)
                .sorted().first
        }
    }

    /// R17, R23: the device reports INSTALLED or FAILED for a seat it holds, REMOVED for one being uninstalled.
    func report() async throws -> Bool {
        var candidates: [(Int, LedgerTarget, ModelEntry)] = []
        for (index, asset) in model.assets.enumerated() {
            for (target, entry) in asset.entries where entry.seat.holdsSeat {
                candidates.append((index, target, entry))
            }
        }
        candidates.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        guard let (assetIndex, target, entry) = random.pick(candidates), let serial = reportingDevice(for: target)
        else { return false }
        var item = VppV1.InstallReport()
        item.serialNumber = serial
        item.adamId = model.assets[assetIndex].adamID
        if entry.seat == .removing {
            item.outcome = .removed
        } else if random.chance(0.7) {
            item.outcome = .installed
        } else {
            item.outcome = .failed
            item.reason = "not enough storage"
        }
        var request = VppV1.ReportInstallResultsRequest()
        request.reports = [item]
        let answer = try await client.call(VppV1.LicenseService.ReportInstallResults.self, request)
        let outcome = item.outcome == .removed ? "REMOVED" : (item.outcome == .installed ? "INSTALLED" : "FAILED")
        steps.append(
            "ReportInstallResults(\(serial), \(model.assets[assetIndex].name), \(outcome)) for \(target) -> applied \(answer.applied), freed \(answer.freedLicenses)\(answer.errors.isEmpty ? "" : ", errors \(answer.errors)")"
        )
        if answer.applied != 1 {
            fail("op ReportInstallResults not applied", "report of \(serial) for \(target): \(answer.errors)")
        }
        // The report is per device and app: it applies to the device's own license and its owner's user license.
        var touched: [LedgerTarget] = [.init(kind: .device, key: serial)]
        if let owner = model.devices[serial]?.owner, model.devices[serial]?.automated == false {
            touched.append(.init(kind: .user, key: owner))
        }
        for touchedTarget in touched {
            guard var current = model.assets[assetIndex].entries[touchedTarget] else { continue }
            switch (item.outcome, current.seat) {
            case (.removed, .removing): model.assets[assetIndex].entries[touchedTarget] = nil  // R17: the seat is freed
            // The app left the device: the owner's user license keeps its seat, and no longer counts as installed.
            case (.removed, .held): current.install = .none
            case (.installed, .held), (.installed, .removing): current.install = .installed
            case (.failed, .held), (.failed, .removing): current.install = .failed
            default: break
            }
            if model.assets[assetIndex].entries[touchedTarget] != nil {
                model.assets[assetIndex].entries[touchedTarget] = current
            }
        }
        model.advance()
        return true
    }

    /// R21: a user asks for an app offered to them (or to their device).
    func requestApp() async throws -> Bool {
        var candidates: [(Int, LedgerTarget, String, String)] = []
        for (index, asset) in model.assets.enumerated() {
            for (target, entry) in asset.entries where entry.seat == .available {
                switch target.kind {
                case .user: candidates.append((index, target, target.key, ""))
                case .device:
                    if let owner = model.devices[target.key]?.owner {
                        candidates.append((index, target, owner, target.key))
                    }
                }
            }
        }
        candidates.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        guard let (assetIndex, target, user, serial) = random.pick(candidates) else { return false }
        var request = VppV1.RequestAppRequest()
        request.assetId = model.assets[assetIndex].id
        request.userExternalId = user
        request.serialNumber = serial
        let label =
            "RequestApp(\(model.assets[assetIndex].name), user \(user)\(serial.isEmpty ? "" : ", device \(serial)")) for \(target)"
        model.advance(requests: [(assetIndex, target)])
        do {
            let answer = try await client.call(VppV1.LicenseService.RequestApp.self, request)
            steps.append(
                "\(label) -> \(stateName(answer.state))\(answer.queuePosition > 0 ? " #\(answer.queuePosition)" : "")"
            )
            requestAnswers.append((assetIndex, target, answer))
        } catch {
            steps.append("\(label) -> error \(error)")
            fail("op RequestApp refused", "\(label): \(error)")
        }
        return true
    }

    var requestAnswers: [(Int, LedgerTarget, VppV1.LicenseEntry)] = []

    /// R15: more licenses bought at Apple; the next sync hands them to waiters.
    func buy() async throws -> Bool {
        let index = random.int(model.assets.count)
        let count = random.int(in: 1...3)
        try env.core.addPurchase(
            uId: uId,
            adamId: model.assets[index].adamID,
            productType: model.assets[index].isBook ? .book : .app,
            count: count,
            deviceAssignable: !model.assets[index].isBook,
            revocable: !model.assets[index].isBook || config.booksRevocable
        )
        model.assets[index].bought += count
        return try await sync("addPurchase(\(model.assets[index].name), \(count)) at Apple; SyncToken")
    }

    /// R15: licenses taken away at Apple (a refund, or a transfer to another location); the next full sync reads the
    /// new count. Nothing is revoked: seats held beyond the count stay (over_assigned), and nobody new gets one until
    /// enough are given back.
    func refund() async throws -> Bool {
        guard let index = random.pick(model.assets.indices.filter { model.assets[$0].bought > 1 }) else { return false }
        // Half the time enough to leave the asset over its count (when it holds seats), else a few.
        let bought = model.assets[index].bought
        let over = bought - model.assets[index].held + random.int(in: 1...2)
        let count = min(bought - 1, max(1, random.chance(0.5) ? over : random.int(in: 1...3)))
        try env.core.refund(uId: uId, adamId: model.assets[index].adamID, count: count)
        model.assets[index].bought -= count
        let held = model.assets[index].held
        stats.refunds += 1
        if held > model.assets[index].bought {
            overHeld[index] = max(overHeld[index], held)
            stats.refundsOver += 1
        }
        return try await sync("refund(\(model.assets[index].name), \(count)) at Apple, \(held) held; SyncToken")
    }

    /// C6: a push job dies mid-way and runs again. Apple's answers are held back for 2 s (the push's first one or
    /// two requests, or its first associate, disassociate or status poll, at random), an operation gives the push
    /// work, and 0-1.2 s after the push starts the test takes its lease, as when its worker dies: the worker's next
    /// heartbeat finds the job gone and cancels the handler wherever it is (Apple may or may not have taken what it was
    /// sending) and nothing it returns is written; when the lease runs out (2 s here) another worker takes the job up
    /// as its next attempt.
    func killPush() async throws -> Bool {
        let (path, count) = random.pick([
            (String?.none, 1), (nil, 2), ("/assets/associate", 1), ("/assets/disassociate", 1), ("/status", 1),
        ])!
        let slow = path.map { "slow \($0)" } ?? "first \(count) requests slow"
        let delay = random.int(in: 0...1200)
        env.core.injectFault(SimulatorFault(kind: .latency, count: count, latencyMilliseconds: 2000, pathSuffix: path))
        defer { env.core.clearFaults() }
        // Up to three operations, each settled before the next, until one gives the push something to send.
        var done = false
        for round in 0..<3 {
            var ran = false
            for _ in 0..<30 where !ran { ran = try await outboxOperation() }
            done = done || ran
            if try await outboxRows() > 0 || round == 2 { break }
            guard try await settle() else { return true }
        }
        guard done else { return false }
        let subject = "push:" + tokenID.lowercased()
        let deadline = ContinuousClock.now + .seconds(3)
        var running: UUID?
        while running == nil, ContinuousClock.now < deadline {
            running = try await env.server.storage.pool.query(
                "SELECT id FROM vpp_control.jobs WHERE subject = \(subject) AND state = 'running' ORDER BY started_at DESC LIMIT 1"
            ).first?.decode(UUID.self, at: 0)
            if running == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        guard let job = running else {
            steps.append("  kill the push (\(slow)): no push ran")
            return true
        }
        stats.killAttempts += 1
        try await Task.sleep(for: .milliseconds(delay))
        let killed = try await env.server.storage.pool.query(
            """
            UPDATE vpp_control.jobs SET lease_owner = 'killed-by-ledger-model'
            WHERE id = \(job) AND state = 'running' RETURNING attempt
            """
        ).first?.decode(Int.self, at: 0)
        if killed != nil { stats.kills += 1 }
        steps.append(
            killed.map {
                "  kill the push (\(slow)) \(delay) ms after it started, attempt \($0): it runs again when its lease runs out"
            }
                ?? "  kill the push (\(slow)): it ended within \(delay) ms"
        )
        return true
    }

    func sync(_ label: String) async throws -> Bool {
        let job = try await env.syncNow(client, tokenID, full: true)
        let ended = try await env.waitForJob(client, jobID: job.id, timeout: .seconds(60)) { !$0.isActive }
        for ext in model.users.keys where model.users[ext]?.acceptedAtApple == true {
            model.users[ext]?.knownAssociated = true
        }
        steps.append("\(label) -> sync \(ended.state)\(ended.error.isEmpty ? "" : " \(ended.error)")")
        model.advance()
        return true
    }

    /// R20: a user with a user license accepts Apple's invitation; a sync lets the ledger know.
    func accept() async throws -> Bool {
        var candidates: Set<String> = []
        for asset in model.assets {
            for (target, entry) in asset.entries where target.kind == .user && entry.seat.holdsSeat {
                if model.users[target.key]?.acceptedAtApple == false, model.users[target.key]?.alive == true {
                    candidates.insert(target.key)
                }
            }
        }
        guard let ext = random.pick(candidates.sorted()), let id = model.users[ext]?.id else { return false }
        do {
            try env.core.acceptInvitation(uId: uId, clientUserId: id)
            model.users[ext]?.acceptedAtApple = true
            return try await sync("acceptInvitation(\(ext)) at Apple; SyncToken")
        } catch {
            steps.append("acceptInvitation(\(ext)) at Apple -> \(error) (not registered at Apple)")
            fail(
                "inv2 user with a user license not registered at Apple",
                "\(ext) holds a user license but Apple has no Registered user \(id): \(error)"
            )
            return true
        }
    }

    // MARK: Settling

    /// Rows in the tenant's apple_outbox: changes Apple has not confirmed yet.
    func outboxRows() async throws -> Int {
        try await env.server.storage.withTenant(tenantID) { transaction in
            try await transaction.query("SELECT count(*)::bigint FROM apple_outbox").single().decode(Int.self, at: 0)
        }
    }

    /// Waits until the tenant's apple_outbox is empty and no push or sync job is active for the token.
    func settle(timeout: Duration = .seconds(30)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        let token = try #require(UUID(uuidString: tokenID))
        let subjects = [tokenID.lowercased(), "push:" + tokenID.lowercased()]
        var quiet = 0
        while true {
            let outbox = try await outboxRows()
            let jobs = try await env.server.storage.pool.query(
                "SELECT count(*)::bigint FROM vpp_control.jobs WHERE subject = ANY(\(subjects)::text[]) AND state IN ('queued', 'running', 'retrying')"
            ).single().decode(Int.self, at: 0)
            let flagged = try await env.server.storage.pool.query(
                "SELECT count(*)::bigint FROM vpp_control.token_registry WHERE token_id = \(token) AND outbox_pending"
            ).single().decode(Int.self, at: 0)
            if outbox == 0 && jobs == 0 && flagged == 0 {
                quiet += 1
                if quiet >= 2 { return true }  // twice in a row, 50 ms apart
            } else {
                quiet = 0
            }
            guard ContinuousClock.now < deadline else {
                let states = try await env.server.storage.pool.query(
                    "SELECT kind, state, attempt, error FROM vpp_control.jobs WHERE subject = ANY(\(subjects)::text[]) ORDER BY queued_at DESC LIMIT 5"
                ).map {
                    "\(try $0.decode(String.self, at: 0)) \(try $0.decode(String.self, at: 1)) \(try $0.decode(Int.self, at: 2)) \(try $0.decode(String.self, at: 3))"
                }
                let rows = try await env.server.storage.withTenant(tenantID) { transaction in
                    try await transaction.query(
                        """
                        SELECT operation || ' ' || adam_id || ' serial=' || serial_number || ' user=' || client_user_id
                               || ' license=' || coalesce(license_id::text, '-') || ' event=' || coalesce(event_id, '-')
                               || CASE WHEN license_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM licenses l WHERE l.id = license_id)
                                       THEN ' (license row gone)' ELSE '' END
                        FROM apple_outbox ORDER BY id LIMIT 10
                        """
                    ).map { try $0.decode(String.self, at: 0) }
                }
                fail(
                    "settle timeout",
                    "pushes did not settle within \(timeout): outbox \(outbox), active jobs \(jobs), flagged \(flagged); last jobs \(states); outbox rows \(rows)"
                )
                return false
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    // MARK: Observing the server

    struct Observed {
        var entries: [[VppV1.LicenseEntry]] = []  // per asset, in ListLicenses order
        var apple: [AppleVPP.Assignment] = []
    }

    func listLicenses(_ assetID: String) async throws -> [VppV1.LicenseEntry] {
        var all: [VppV1.LicenseEntry] = []
        var request = VppV1.ListLicensesRequest()
        request.assetId = assetID
        request.page = VppV1.PageRequest()
        request.page?.pageSize = 1000
        while true {
            let page = try await client.call(VppV1.LicenseService.ListLicenses.self, request)
            all += page.entries
            guard let next = page.page?.nextPageToken, !next.isEmpty else { return all }
            request.page?.pageToken = next
        }
    }

    func appleAssignments() async throws -> [AppleVPP.Assignment] {
        let credential = try await env.sync.tokens.credential(
            tenantID: tenantID,
            try #require(UUID(uuidString: tokenID))
        ).credential
        let session = env.sync.apple.session(token: try ServiceToken(fileContents: credential, now: Date()))
        return try await session.allAssignments().items
    }

    func fail(_ category: String, _ detail: String) {
        discrepancies.append(LedgerDiscrepancy(category: category, detail: detail))
    }

    /// Whether ListLicenses' entry holds a seat. FAILED is ambiguous in the API (Apple refused: no seat; the install
    /// failed: a seat): the model says which.
    func holdsSeat(_ entry: VppV1.LicenseEntry, asset: Int) -> Bool {
        switch entry.state {
        case .pending, .installed, .waitingForInvitation, .removing, .removed: return true
        case .failed: return model.assets[asset].entries[LedgerTarget(entry)]?.install == .failed
        default: return false
        }
    }

    // MARK: The invariants

    func checkAll() async throws {
        var observed = Observed()
        for asset in model.assets { observed.entries.append(try await listLicenses(asset.id)) }
        observed.apple = try await appleAssignments()
        checkSeatsWithinBought(observed)
        checkAppleMatchesLedger(observed)
        checkModel(observed)
        try await checkViewsAgree(observed)
        checkReasons(observed)
        checkRequestAnswers(observed)
    }

    /// Invariant 1 (R15): never more seats held than bought, here and at Apple.
    func checkSeatsWithinBought(_ observed: Observed) {
        let counts = env.core.assetCounts(uId: uId)
        for (index, asset) in model.assets.enumerated() {
            let held = observed.entries[index].filter { holdsSeat($0, asset: index) }.count
            let ceiling = max(asset.bought, overHeld[index])
            if held > ceiling {
                fail(
                    "inv1 R15 ledger holds more than bought" + (overHeld[index] > 0 ? " (after a refund)" : ""),
                    "\(asset.name): ListLicenses holds \(held) seats, bought \(asset.bought)\(overHeld[index] > 0 ? ", \(overHeld[index]) held when the refund left it over" : "")"
                )
            }
            let apple = counts["\(asset.adamID)/STDQ"]
            if let apple, apple.total != asset.bought {
                fail(
                    "inv1 Apple total vs bought",
                    "\(asset.name): simulator total \(apple.total), model bought \(asset.bought)"
                )
            }
            if let apple, apple.assigned > max(apple.total, overHeld[index]) {
                fail(
                    "inv1 R15 Apple assigned more than bought",
                    "\(asset.name): Apple assigned \(apple.assigned) > total \(apple.total) (held beyond it after a refund: \(overHeld[index]))"
                )
            }
            let listed = observed.apple.filter { $0.adamId == asset.adamID }.count
            if let apple, listed != apple.assigned {
                fail(
                    "inv1 Apple assignments vs Apple assignedCount",
                    "\(asset.name): Apple lists \(listed) assignments, assignedCount \(apple.assigned)"
                )
            }
        }
    }

    /// Invariant 2 (R15, R16, R17): Apple's assignments of the asset are exactly the targets the ledger holds a seat for.
    func checkAppleMatchesLedger(_ observed: Observed) {
        let byID = Dictionary(uniqueKeysWithValues: model.users.values.map { ($0.id, $0.externalID) })
        for (index, asset) in model.assets.enumerated() {
            var apple: [String] = []
            for assignment in observed.apple where assignment.adamId == asset.adamID {
                if let serial = assignment.serialNumber, !serial.isEmpty {
                    apple.append("D:\(serial)")
                } else if let user = assignment.clientUserId {
                    apple.append("U:\(byID[user.lowercased()] ?? "unknown-\(user)")")
                }
            }
            let ledger = observed.entries[index].filter { holdsSeat($0, asset: index) }.map {
                LedgerTarget($0).description
            }
            let appleSet = Set(apple)
            let ledgerSet = Set(ledger)
            if appleSet != ledgerSet || apple.count != appleSet.count {
                let deleted = appleSet.subtracting(ledgerSet).filter { item in
                    let key = String(item.dropFirst(2))
                    return item.hasPrefix("U:") ? model.users[key]?.alive == false : model.devices[key]?.alive == false
                }
                fail(
                    "inv2 Apple assignments vs ledger holders"
                        + (deleted.isEmpty ? "" : " (deleted directory entries)"),
                    "\(asset.name): at Apple not held in the ledger \(appleSet.subtracting(ledgerSet).sorted()); held in the ledger, not at Apple \(ledgerSet.subtracting(appleSet).sorted()); Apple \(apple.count) assignments, ledger \(ledger.count) holders"
                )
            }
        }
    }

    /// Invariant 3 (R15, R17, R21, R23): the model's holders and waiters; FIFO; free seats mean nobody waits.
    func checkModel(_ observed: Observed) {
        for (index, asset) in model.assets.enumerated() {
            let entries = observed.entries[index]
            var server: [LedgerTarget: VppV1.InstallState] = [:]
            for entry in entries {
                let target = LedgerTarget(entry)
                if server[target] != nil {
                    fail("inv3 duplicate ledger entry", "\(asset.name): \(target) listed twice")
                }
                server[target] = entry.state
            }
            var wrong: [String] = []
            for target in Set(server.keys).union(asset.entries.keys).sorted() {
                let expected = asset.entries[target].map { model.display(target, $0) }
                let actual = server[target]
                if expected != actual {
                    wrong.append(
                        "\(target) expected \(expected.map(stateName) ?? "no entry"), server \(actual.map(stateName) ?? "no entry")"
                    )
                }
            }
            if !wrong.isEmpty {
                // Name the kind of disagreement so the summary groups alike ones.
                let kinds = Set(
                    wrong.map { line -> String in
                        let parts = line.components(separatedBy: " expected ")
                        return parts.count > 1 ? parts[1].replacingOccurrences(of: "server ", with: "-> ") : line
                    }
                ).sorted()
                fail(
                    "inv3 model vs ListLicenses: \(kinds.joined(separator: "; "))",
                    "\(asset.name) (bought \(asset.bought)): \(wrong.joined(separator: "; "))"
                )
            }

            // The server's line, in order.
            let waiters = entries.filter { $0.state == .waitingForLicense }.sorted {
                $0.queuePosition < $1.queuePosition
            }
            let serverLine = waiters.map(LedgerTarget.init)
            if waiters.map(\.queuePosition) != Array(1...max(1, waiters.count)).prefix(waiters.count).map(UInt32.init) {
                fail(
                    "inv3 queue positions not 1...n",
                    "\(asset.name): \(waiters.map { "\(LedgerTarget($0))#\($0.queuePosition)" })"
                )
            }
            if serverLine != asset.line, Set(serverLine) == Set(asset.line) {
                fail("inv3 R15 line order", "\(asset.name): server line \(serverLine), expected \(asset.line)")
            }
            // FIFO against the previous step: nobody was served while an earlier waiter still waits.
            if index < previousLines.count {
                let before = previousLines[index]
                let still = Set(serverLine)
                for (position, target) in before.enumerated()
                where !still.contains(target)
                    && server[target].map({ $0 != .waitingForLicense && $0 != .available }) == true
                {
                    if let earlier = before.prefix(position).first(where: { still.contains($0) }) {
                        fail(
                            "inv3 R15 FIFO violated",
                            "\(asset.name): \(target) (place \(position + 1)) was served while \(earlier) (earlier in line) still waits"
                        )
                    }
                }
                let newcomers = serverLine.filter { !before.contains($0) }
                if let firstNew = newcomers.first, let firstNewIndex = serverLine.firstIndex(of: firstNew),
                    serverLine[firstNewIndex...].contains(where: { before.contains($0) })
                {
                    fail(
                        "inv3 R15 newcomer ahead of an earlier waiter",
                        "\(asset.name): line \(serverLine), previous line \(before)"
                    )
                }
            }
            let held = entries.filter { holdsSeat($0, asset: index) }.count
            if !waiters.isEmpty && held < asset.bought {
                fail(
                    "inv3 R15 free seats while targets wait",
                    "\(asset.name): \(held) held of \(asset.bought) bought, \(waiters.count) waiting"
                )
            }
        }
    }

    /// The counts every view should show for one asset, from ListLicenses.
    struct ExpectedCounts: CustomStringConvertible {
        var total, inUse, available, reserved, waiting, overAssigned: Int
        var description: String {
            "total \(total) in_use \(inUse) available \(available) reserved \(reserved) waiting \(waiting) over_assigned \(overAssigned)"
        }
    }

    func compareCounts(_ view: String, _ counts: VppV1.LicenseCounts?, _ expected: ExpectedCounts, asset: String) {
        guard let counts else {
            fail("inv4 \(view) has no counts", asset)
            return
        }
        let fields: [(String, Int, Int)] = [
            ("total", Int(counts.total), expected.total), ("in_use", Int(counts.inUse), expected.inUse),
            ("available", Int(counts.available), expected.available),
            ("reserved", Int(counts.reserved), expected.reserved),
            ("waiting", Int(counts.waiting), expected.waiting),
            ("over_assigned", Int(counts.overAssigned), expected.overAssigned),
        ]
        for (name, actual, wanted) in fields where actual != wanted {
            fail(
                "inv4 \(view).\(name) vs ListLicenses",
                "\(asset): \(view).\(name) = \(actual), but ListLicenses/bought give \(wanted) (expected \(expected); \(view): total \(counts.total) in_use \(counts.inUse) available \(counts.available) reserved \(counts.reserved) waiting \(counts.waiting) apple_assigned \(counts.appleAssigned))"
            )
        }
    }

    /// Invariant 4 (R15, R23): every view agrees, for every asset and every target.
    func checkViewsAgree(_ observed: Observed) async throws {
        var ledgerState: [String: VppV1.InstallState] = [:]  // "<asset id>|<target>"
        for (index, asset) in model.assets.enumerated() {
            let entries = observed.entries[index]
            for entry in entries { ledgerState["\(asset.id)|\(LedgerTarget(entry))"] = entry.state }
            let held = entries.filter { holdsSeat($0, asset: index) }.count
            let waiting = entries.filter { $0.state == .waitingForLicense }.count
            // Settled: nothing is reserved (every held seat is confirmed); nobody else holds seats at Apple.
            let expected = ExpectedCounts(
                total: asset.bought,
                inUse: held,
                available: max(0, asset.bought - held),
                reserved: 0,
                waiting: waiting,
                overAssigned: max(0, held - asset.bought)
            )

            var countsRequest = VppV1.GetLicenseCountsRequest()
            countsRequest.assetId = asset.id
            compareCounts(
                "GetLicenseCounts",
                try await client.call(VppV1.CatalogService.GetLicenseCounts.self, countsRequest),
                expected,
                asset: asset.name
            )
            var getAsset = VppV1.GetAssetRequest()
            getAsset.assetId = asset.id
            compareCounts(
                "GetAsset.counts",
                try await client.call(VppV1.CatalogService.GetAsset.self, getAsset).counts,
                expected,
                asset: asset.name
            )
            var list = VppV1.ListAssetsRequest()
            list.tokenId = tokenID
            list.query = asset.adamID
            let listed =
                asset.isBook
                ? try await client.call(VppV1.CatalogService.ListBooks.self, list).assets
                : try await client.call(VppV1.CatalogService.ListApps.self, list).assets
            compareCounts(
                asset.isBook ? "ListBooks.counts" : "ListApps.counts",
                listed.first { $0.id == asset.id }?.counts,
                expected,
                asset: asset.name
            )

            var usageRequest = VppV1.GetLicenseUsageRequest()
            usageRequest.assetId = asset.id
            let usage = try await client.call(VppV1.LicenseService.GetLicenseUsage.self, usageRequest)
            compareCounts("GetLicenseUsage.counts", usage.counts, expected, asset: asset.name)
            func count(_ state: VppV1.InstallState) -> Int { entries.filter { $0.state == state }.count }
            let perState: [(String, UInt32, VppV1.InstallState)] = [
                ("installed", usage.installed, .installed), ("pending", usage.pending, .pending),
                ("waiting_for_license", usage.waitingForLicense, .waitingForLicense),
                ("waiting_for_invitation", usage.waitingForInvitation, .waitingForInvitation),
                ("failed", usage.failed, .failed),
                ("not_applicable", usage.notApplicable, .notApplicable), ("removing", usage.removing, .removing),
            ]
            for (name, actual, state) in perState where Int(actual) != count(state) {
                fail(
                    "inv4 GetLicenseUsage.\(name) vs ListLicenses",
                    "\(asset.name): GetLicenseUsage.\(name) = \(actual), ListLicenses has \(count(state)) \(stateName(state)) entries"
                )
            }
        }

        // Per target: GetUserStatus / GetDeviceStatus show the same entries in the same states as ListLicenses.
        let assetNames = Dictionary(uniqueKeysWithValues: model.assets.map { ($0.id, $0.name) })
        func compareStatus(
            _ view: String,
            key: String,
            _ status: VppV1.TargetStatus,
            expectedTargets: Set<LedgerTarget>
        ) {
            var seen: Set<String> = []
            for entry in status.entries {
                let target = LedgerTarget(entry)
                let slot = "\(entry.assetId)|\(target)"
                seen.insert(slot)
                let name = assetNames[entry.assetId] ?? entry.assetId
                if entry.reason.isEmpty {
                    fail(
                        "inv5 R23 \(view) entry without a reason",
                        "\(view)(\(key)): \(name) \(target) \(stateName(entry.state))"
                    )
                }
                guard let listed = ledgerState[slot] else {
                    fail(
                        "inv4 \(view) entry not in ListLicenses",
                        "\(view)(\(key)): \(name) \(target) \(stateName(entry.state)); ListLicenses has no entry"
                    )
                    continue
                }
                if listed != entry.state {
                    fail(
                        "inv4 \(view) vs ListLicenses state: \(stateName(entry.state)) vs \(stateName(listed))",
                        "\(view)(\(key)): \(name) \(target) is \(stateName(entry.state)), ListLicenses says \(stateName(listed))"
                    )
                }
            }
            for (slot, state) in ledgerState {
                let parts = slot.split(separator: "|", maxSplits: 1)
                guard parts.count == 2, expectedTargets.contains(where: { $0.description == parts[1] }) else {
                    continue
                }
                if !seen.contains(slot) {
                    fail(
                        "inv4 \(view) misses a ListLicenses entry",
                        "\(view)(\(key)): no entry for \(assetNames[String(parts[0])] ?? String(parts[0])) \(parts[1]) (ListLicenses: \(stateName(state)))"
                    )
                }
            }
        }
        for ext in model.aliveUsers {
            var request = VppV1.GetUserStatusRequest()
            request.externalId = ext
            let status = try await client.call(VppV1.LicenseService.GetUserStatus.self, request)
            compareStatus("GetUserStatus", key: ext, status, expectedTargets: [.init(kind: .user, key: ext)])
        }
        for serial in model.aliveDevices {
            var request = VppV1.GetDeviceStatusRequest()
            request.serialNumber = serial
            let status = try await client.call(VppV1.LicenseService.GetDeviceStatus.self, request)
            var targets: Set<LedgerTarget> = [.init(kind: .device, key: serial)]
            if let device = model.devices[serial], !device.automated, let owner = device.owner {
                targets.insert(.init(kind: .user, key: owner))
            }
            compareStatus("GetDeviceStatus", key: serial, status, expectedTargets: targets)
        }

        // Each assignment's counts: its targets now and how their licenses of the asset stand.
        var list = VppV1.ListAssignmentsRequest()
        list.page = VppV1.PageRequest()
        list.page?.pageSize = 1000
        let served = try await client.call(VppV1.AssignmentService.ListAssignments.self, list).assignments
        let byID = Dictionary(served.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        if Set(served.map(\.id)) != Set(model.assignments.map(\.id)) {
            fail(
                "inv4 ListAssignments vs model",
                "server \(served.map { $0.id.prefix(8) }.sorted()), model \(model.assignments.map { $0.id.prefix(8) }.sorted())"
            )
        }
        for assignment in model.assignments {
            guard let actual = byID[assignment.id] else { continue }
            let asset = model.assets[assignment.asset]
            let targets = model.targets(of: assignment)
            let states = targets.compactMap { ledgerState["\(asset.id)|\($0)"] }
            let heldHere = targets.filter { target in
                guard let state = ledgerState["\(asset.id)|\(target)"] else { return false }
                if state == .failed { return model.assets[assignment.asset].entries[target]?.install == .failed }
                return [.pending, .installed, .waitingForInvitation].contains(state)
            }.count
            let fields: [(String, UInt32, Int)] = [
                ("targets", actual.targets, targets.count),
                ("granted", actual.granted, heldHere),
                ("waiting", actual.waiting, states.filter { $0 == .waitingForLicense }.count),
                ("installed", actual.installed, states.filter { $0 == .installed }.count),
                ("failed", actual.failed, states.filter { $0 == .failed }.count),
            ]
            for (name, value, wanted) in fields where Int(value) != wanted {
                fail(
                    "inv4 Assignment.\(name) vs ListLicenses",
                    "\(assignmentName(assignment)): Assignment.\(name) = \(value), its targets in ListLicenses give \(wanted) (targets \(targets.sorted()))"
                )
            }
        }
    }

    /// Invariant 5 (R23): every entry says why.
    func checkReasons(_ observed: Observed) {
        for (index, asset) in model.assets.enumerated() {
            for entry in observed.entries[index] where entry.reason.isEmpty {
                fail(
                    "inv5 R23 ListLicenses entry without a reason: \(stateName(entry.state))",
                    "\(asset.name): \(LedgerTarget(entry)) \(stateName(entry.state)) has an empty reason"
                )
            }
        }
    }

    /// RequestApp's answer (R21) is the target's state, as every other view shows it.
    func checkRequestAnswers(_ observed: Observed) {
        for (index, target, answer) in requestAnswers {
            let listed = observed.entries[index].first { LedgerTarget($0) == target }
            if answer.reason.isEmpty {
                fail(
                    "inv5 R23 RequestApp answer without a reason",
                    "\(model.assets[index].name) \(target): \(stateName(answer.state))"
                )
            }
            if listed?.state != answer.state {
                fail(
                    "inv4 RequestApp answer vs ListLicenses: \(stateName(answer.state)) vs \(listed.map { stateName($0.state) } ?? "none")",
                    "\(model.assets[index].name) \(target): RequestApp answered \(stateName(answer.state)), ListLicenses after the push says \(listed.map { stateName($0.state) } ?? "no entry")"
                )
            }
        }
        requestAnswers.removeAll()
    }

    /// After the checks: the model takes the server's ledger as the starting point of the next step, so one
    /// disagreement does not cascade (install marks and requests stay the model's).
    func adopt(_ observed: Observed) {
        previousLines = []
        for (index, _) in model.assets.enumerated() {
            var next: [LedgerTarget: ModelEntry] = [:]
            for entry in observed.entries[index] {
                let target = LedgerTarget(entry)
                let old = model.assets[index].entries[target]
                let seat: SeatClass
                switch entry.state {
                case .pending, .installed, .waitingForInvitation: seat = .held
                case .failed: seat = old?.install == .failed ? .held : .refused
                case .removing, .removed: seat = .removing
                case .waitingForLicense: seat = .waiting
                case .available: seat = .available
                case .notApplicable: seat = .notApplicable
                default: seat = .refused
                }
                var adopted = ModelEntry(seat: seat)
                if let old, old.seat.holdsSeat == seat.holdsSeat {
                    adopted.install = seat.holdsSeat ? old.install : .none
                    adopted.requested = old.requested
                }
                if seat == .held, entry.state == .installed { adopted.install = .installed }
                next[target] = adopted
            }
            let held = observed.entries[index].filter { holdsSeat($0, asset: index) }.count
            overHeld[index] = held > model.assets[index].bought ? min(overHeld[index], held) : 0
            let line = observed.entries[index].filter { $0.state == .waitingForLicense }.sorted {
                $0.queuePosition < $1.queuePosition
            }.map(LedgerTarget.init)
            model.assets[index].entries = next
            model.assets[index].line = line
            previousLines.append(line)
        }
    }

    func observe() async throws -> Observed {
        var observed = Observed()
        for asset in model.assets { observed.entries.append(try await listLicenses(asset.id)) }
        return observed
    }

    // MARK: The sequence

    /// Runs the sequence; returns the discrepancies of the first failing step (or of every step with keepGoing).
    func run() async throws -> [(step: Int, found: [LedgerDiscrepancy])] {
        try await setUp()
        model.advance()
        var failures: [(Int, [LedgerDiscrepancy])] = []
        var stepNumber = 0
        // Step 0: the setup itself (no assignments yet: nothing may be held).
        if try await settle() { try await checkAll() }
        adopt(try await observe())
        if !discrepancies.isEmpty {
            failures.append((0, discrepancies))
            report(step: 0)
            discrepancies = []
            if !config.keepGoing { return failures }
        }
        while stepNumber < config.steps {
            stepNumber += 1
            var done = false
            for _ in 0..<30 where !done { done = try await randomOperation() }
            if !done { steps.append("(no operation possible)") }
            let settled = try await settle()
            if settled { try await checkAll() }
            adopt(try await observe())
            if !discrepancies.isEmpty {
                failures.append((stepNumber, discrepancies))
                report(step: stepNumber)
                discrepancies = []
                // Once pushes stop settling, every later step would only wait out the timeout again.
                if !config.keepGoing || !settled { break }
            }
        }
        await client.close()
        return failures
    }

    func deleteTenant() async throws {
        var request = VppV1.DeleteTenantRequest()
        request.tenantId = tenantID.uuidString.lowercased()
        request.confirm = request.tenantId
        let operatorClient = env.server.operatorClient()
        defer { Task { await operatorClient.close() } }
        let answer = try await operatorClient.call(VppV1.OperatorService.DeleteTenant.self, request)
        if answer.releasedTokens != 1 {
            Issue.record("DeleteTenant of sequence \(sequence) released \(answer.releasedTokens) tokens, not 1")
        }
    }

    func report(step: Int) {
        let numbered = steps.enumerated().map { "  \($0.offset). \($0.element)" }.joined(separator: "\n")
        let found = discrepancies.map { "  - [\($0.category)] \($0.detail)" }.joined(separator: "\n")
        Issue.record(
            """
            Ledger model: sequence \(sequence) of seed \(config.seed) failed after step \(step).
            Reproduce: VPP_LEDGER_MODEL_SEED=\(config.seed) VPP_LEDGER_MODEL_ONLY=\(sequence) VPP_LEDGER_MODEL_STEPS=\(config.steps) swift test --filter LedgerModel
            Discrepancies:
            \(found)
            Steps (0 is the setup):
            \(numbered)
            """
        )
    }
}

// MARK: - The test

/// The seed of a test process: every lane reads the same one, so a printed seed reproduces every lane's sequences.
let ledgerModelConfig = LedgerModelConfig.fromEnvironment()

// The CI default, 8 sequences of 30 steps in 8 lanes, runs in about a minute alongside the rest of the suite: the
// sequences wait on Apple's latency and on leases far more than they compute, so they overlap well on two cores. The
// time limit is for soaks (1000 sequences of 15 steps take about 9 s each in one lane; more lanes, or two processes
// with different seeds, divide that).
@Suite(
    "Ledger model: random sequences against an in-memory model of the truth (R15, R16, R17, R20, R21, R23)",
    .timeLimit(.minutes(180))
)
struct LedgerModelTests {
    /// The lanes' numbers: arguments of the test, so Swift Testing runs them side by side.
    static let lanes = Array(0..<ledgerModelConfig.lanes)

    @Test(
        "R15-R23: seats <= bought, Apple == ledger, FIFO waiters, every view agrees, every entry says why",
        arguments: lanes
    )
    func randomSequences(lane: Int) async throws {
        let config = ledgerModelConfig
        var seeds = SplitMix64(seed: config.seed)
        // Sequence n (1-based) of the seed runs in lane n % lanes: the numbering, and so ONLY, is the same in any lanes.
        let mine = (1...max(1, config.sequences)).map { ($0, seeds.next()) }.filter { sequence, _ in
            sequence % config.lanes == lane && (config.only.map { $0 == sequence } ?? true)
        }
        guard !mine.isEmpty else { return }
        let name = "LedgerModel lane \(lane + 1)/\(config.lanes)"
        print(
            "\(name): seed \(config.seed), sequences \(mine.map(\.0)) x \(config.steps) steps\(config.keepGoing ? ", keep going" : "")"
        )
        let started = ContinuousClock.now
        var summary: [String: (count: Int, example: String)] = [:]
        var clean = 0
        var ran = 0
        var stats = LedgerModelStats()
        // A 2 s lease: a killed push is taken up again within seconds (heartbeats every 0.67 s).
        try await SyncEnvironment.run(lease: .seconds(2)) { env in
            for (sequence, seed) in mine {
                let run = LedgerModelRun(env: env, config: config, sequence: sequence, seed: seed)
                let failures = try await run.run()
                stats += run.stats
                // Each sequence's tenant goes (DeleteTenant drops its schema): a soak's later sequences run as fast
                // as its first, and deleting a tenant in any state is exercised too.
                try await run.deleteTenant()
                ran += 1
                if failures.isEmpty { clean += 1 }
                if ran % 25 == 0 {
                    print(
                        "\(name): \(ran) sequences run, \(clean) clean, \(ContinuousClock.now - started); \(stats.description)"
                    )
                }
                for (step, found) in failures {
                    for item in found {
                        let previous = summary[item.category]
                        summary[item.category] = (
                            (previous?.count ?? 0) + 1,
                            previous?.example ?? "seq \(sequence) step \(step): \(item.detail)"
                        )
                    }
                }
            }
        }
        print(
            "\(name): seed \(config.seed): \(ran) sequences, \(clean) clean, in \(ContinuousClock.now - started); \(stats.description)"
        )
        if !summary.isEmpty {
            let lines = summary.sorted { $0.key < $1.key }.map {
                "  \($0.value.count)x [\($0.key)]\n      e.g. \($0.value.example)"
            }
            print("\(name): distinct discrepancies (seed \(config.seed)):\n" + lines.joined(separator: "\n"))
        }
    }
}
