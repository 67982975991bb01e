import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import VPPClient
import VPPLoadKit
import VPPProto

/// `vpp-load notify-latency`: how long what happens at Apple takes to show in vppd (issue 18), against a running
/// vppd and simulator (the local run: Deploy/run-local.sh).
struct NotifyLatencyCommand: LoadSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "notify-latency",
        abstract:
            "Time Apple's notifications end to end: a grant confirmed, an invitation accepted, a purchase served.",
        discussion: """
            Against a running vppd and the Apple simulator (Deploy/run-local.sh), with the tenant's key. Each round: \
            (1) CreateAssignment for a new device until Apple's confirmation reaches the ledger (GetLicenseCounts: \
            nothing reserved); (2) a new user assigned a user license, accepting Apple's invitation at the simulator, \
            until GetUserStatus says PENDING; (3) one more device than there are licenses, then one license bought at \
            the simulator, until nobody waits. Polls every 10 ms. It adds devices, users, groups and licenses to the \
            demo location: a scratch tenant's. Prints min, median and max of each.
            Example: vpp-load notify-latency --api-key-file .vpp-local/demo-tenant.key --rounds 5
            """
    )

    @Option(help: "vppd's RPC address.")
    var server = "127.0.0.1:7443"

    @Option(help: "File with the tenant's API key.")
    var apiKeyFile: String

    @Option(help: "The simulator's base URL (its control API is <url>/_control).")
    var simulator = "http://127.0.0.1:8090"

    @Option(help: "The app to assign (its adamId); default: the tenant's first app with licenses.")
    var adamID: String?

    @Option(help: "Rounds of the three measurements.")
    var rounds = 5

    func execute() async throws {
        let key = try String(contentsOfFile: self.apiKeyFile, encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        let parts = self.server.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--server is HOST:PORT.") }
        let client = VPPClient(ClientConfiguration(host: String(parts[0]), port: port, apiKey: key))
        defer { Task { await client.close() } }
        let tokens = try await client.call(VppV1.TokenService.ListTokens.self, VppV1.ListTokensRequest()).tokens
        guard let token = tokens.first(where: { $0.state == .valid || $0.state == .expiringSoon }) else {
            throw ValidationError("The tenant has no valid token.")
        }
        Self.say(
            "token \(token.id) at location \(token.locationId): notifications subscribed \(token.notifications?.subscribed ?? false)"
        )
        let apps = try await client.call(VppV1.CatalogService.ListApps.self, VppV1.ListAssetsRequest(tokenId: token.id))
            .assets.filter { !($0.counts?.unlimited ?? true) && $0.deviceAssignable }
        guard let app = apps.first(where: { self.adamID == nil || $0.adamId == self.adamID }) else {
            throw ValidationError("No device-assignable app with counted licenses.")
        }
        Self.say("app \(app.adamId) (\(app.name))")
        let run = "\(UInt32.random(in: 0...UInt32.max))"
        var grant: [Double] = []
        var invitation: [Double] = []
        var purchase: [Double] = []
        for round in 0..<self.rounds {
            try await self.ensureAvailable(client, app, token.locationId, 2)
            grant.append(try await self.timeGrant(client, app.id, "LAT-\(run)-\(round)"))
            invitation.append(try await self.timeInvitation(client, app.id, token.locationId, "lat-\(run)-\(round)"))
            purchase.append(try await self.timePurchase(client, app, token.locationId, "BUY-\(run)-\(round)"))
            Self.say(
                String(
                    format: "round %d: grant %.3f s, invitation %.3f s, purchase %.3f s",
                    round + 1,
                    grant.last!,
                    invitation.last!,
                    purchase.last!
                )
            )
        }
        for (name, values) in [
            ("CreateAssignment -> grant confirmed", grant), ("invitation accepted -> PENDING", invitation),
            ("licenses bought -> waiters served", purchase),
        ] {
            let sorted = values.sorted()
            Self.say(
                String(
                    format: "%-38@ min %.3f s  median %.3f s  max %.3f s",
                    name as NSString,
                    sorted.first!,
                    sorted[sorted.count / 2],
                    sorted.last!
                )
            )
        }
    }

    /// A line on standard output at once (a run watched live, or cut short, shows each round).
    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    func counts(_ client: VPPClient, _ assetID: String) async throws -> VppV1.LicenseCounts {
        try await client.call(
            VppV1.CatalogService.GetLicenseCounts.self,
            VppV1.GetLicenseCountsRequest(assetId: assetID)
        )
    }

    /// Polls until `done` holds (at most 10 minutes); returns the seconds since `start`.
    func until(_ start: ContinuousClock.Instant, _ done: () async throws -> Bool) async throws -> Double {
        while !(try await done()) {
            guard ContinuousClock.now - start < .seconds(600) else { throw ValidationError("gave up after 10 minutes") }
            try await Task.sleep(for: .milliseconds(10))
        }
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    func deviceGroup(_ client: VPPClient, _ name: String, serials: [String]) async throws -> String {
        _ = try await client.call(
            VppV1.DirectoryService.UpsertDevices.self,
            VppV1.UpsertDevicesRequest(
                devices: serials.map {
                    VppV1.DeviceInput(serialNumber: $0, enrollment: .automated, booksAppPresent: true)
                }
            )
        )
        return try await self.group(client, name, .device, serials)
    }

    func group(_ client: VPPClient, _ name: String, _ kind: VppV1.GroupKind, _ members: [String]) async throws
        -> String
    {
        let group = try await client.call(
            VppV1.DirectoryService.CreateGroup.self,
            VppV1.CreateGroupRequest(externalId: name, name: name, kind: kind)
        )
        _ = try await client.call(
            VppV1.DirectoryService.AddGroupMembers.self,
            VppV1.GroupMembersRequest(groupId: group.id, memberKeys: members)
        )
        return group.id
    }

    func assign(_ client: VPPClient, _ assetID: String, _ groupID: String, _ type: VppV1.LicenseType) async throws {
        _ = try await client.call(
            VppV1.AssignmentService.CreateAssignment.self,
            VppV1.CreateAssignmentRequest(assetId: assetID, groupId: groupID, action: .required, licenseType: type)
        )
    }

    /// Buys licenses at the simulator until the app has `count` free and nobody waits (earlier rounds, or an earlier
    /// run cut short, may have used them all).
    func ensureAvailable(_ client: VPPClient, _ app: VppV1.Asset, _ uId: String, _ count: Int) async throws {
        let counts = try await self.counts(client, app.id)
        guard counts.available < count || counts.waiting > 0 else { return }
        try await self.control(
            "/purchases",
            ["uId": uId, "adamId": app.adamId, "count": Int(counts.waiting) + count]
        )
        _ = try await self.until(.now) {
            let now = try await self.counts(client, app.id)
            return now.available >= count && now.waiting == 0 && now.reserved == 0
        }
    }

    /// (1) From CreateAssignment to Apple's confirmation in the ledger.
    func timeGrant(_ client: VPPClient, _ assetID: String, _ serial: String) async throws -> Double {
        let before = try await self.counts(client, assetID)
        let group = try await self.deviceGroup(client, serial, serials: [serial])
        let start = ContinuousClock.now
        try await self.assign(client, assetID, group, .device)
        return try await self.until(start) {
            let counts = try await self.counts(client, assetID)
            return counts.inUse == before.inUse + 1 && counts.reserved == 0
        }
    }

    /// (2) From the user accepting Apple's invitation to their install being PENDING.
    func timeInvitation(_ client: VPPClient, _ assetID: String, _ uId: String, _ name: String) async throws -> Double {
        _ = try await client.call(
            VppV1.DirectoryService.UpsertUsers.self,
            VppV1.UpsertUsersRequest(users: [VppV1.UserInput(externalId: name, email: "\(name)@example.com")])
        )
        let group = try await self.group(client, name, .user, [name])
        try await self.assign(client, assetID, group, .user)
        var request = VppV1.GetEntryRequest()
        request.by = .key(name)
        var user = try await client.call(VppV1.DirectoryService.GetUser.self, request)
        _ = try await self.until(.now) {
            user = try await client.call(VppV1.DirectoryService.GetUser.self, request)
            return user.vppState == .invited
        }
        let start = ContinuousClock.now
        try await self.control("/users/accept", ["uId": uId, "clientUserId": user.id])
        return try await self.until(start) {
            let status = try await client.call(
                VppV1.LicenseService.GetUserStatus.self,
                VppV1.GetUserStatusRequest(externalId: name)
            )
            return status.entries.first { $0.assetId == assetID }?.state == .pending
        }
    }

    /// (3) From licenses bought at Apple to the waiter served (and confirmed by Apple).
    func timePurchase(_ client: VPPClient, _ app: VppV1.Asset, _ uId: String, _ prefix: String) async throws -> Double {
        let counts = try await self.counts(client, app.id)
        let free = Int(counts.available)
        let serials = (0...free).map { "\(prefix)-\($0)" }
        let group = try await self.deviceGroup(client, prefix, serials: serials)
        try await self.assign(client, app.id, group, .device)
        _ = try await self.until(.now) {
            let now = try await self.counts(client, app.id)
            return now.waiting >= 1 && now.reserved == 0
        }
        let start = ContinuousClock.now
        try await self.control("/purchases", ["uId": uId, "adamId": app.adamId, "count": 1])
        return try await self.until(start) {
            let now = try await self.counts(client, app.id)
            return now.waiting == 0 && now.reserved == 0
        }
    }

    func control(_ path: String, _ body: [String: any Sendable]) async throws {
        var request = HTTPClientRequest(url: self.simulator + "/_control" + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        guard response.status.code < 300 else {
            let text = try await response.body.collect(upTo: 1 << 16)
            throw ValidationError("The simulator refused \(path): \(String(buffer: text))")
        }
    }
}
