import AppleVPP
import AppleVPPSimulator
import Foundation
import Testing
import VPPClient
import VPPProto
import VPPTesting

/// The license lifecycle as a client written from Protos/ sees it, over the RPC port (real PostgreSQL, the simulator):
/// issue 15's seven points, each under the rule it proves.
@Suite(
    "License story over RPC: every view agrees, freed licenses reach the next waiter and Apple",
    .timeLimit(.minutes(5))
)
struct LicenseStoryTests {
    static let app = "408709785"

    /// Every count a client can read for one asset, from every call that returns them.
    static func allCounts(_ client: VPPClient, _ assetID: String) async throws -> [String: VppV1.LicenseCounts] {
        var countsRequest = VppV1.GetLicenseCountsRequest()
        countsRequest.assetId = assetID
        var assetRequest = VppV1.GetAssetRequest()
        assetRequest.assetId = assetID
        var usageRequest = VppV1.GetLicenseUsageRequest()
        usageRequest.assetId = assetID
        let listed = try await client.call(VppV1.CatalogService.ListApps.self, VppV1.ListAssetsRequest()).assets
        return [
            "GetLicenseCounts": try await client.call(VppV1.CatalogService.GetLicenseCounts.self, countsRequest),
            "GetAsset": try await client.call(VppV1.CatalogService.GetAsset.self, assetRequest).counts ?? .init(),
            "ListApps": listed.first { $0.id == assetID }?.counts ?? .init(),
            "GetLicenseUsage": try await client.call(VppV1.LicenseService.GetLicenseUsage.self, usageRequest).counts
                ?? .init(),
        ]
    }

    /// The serial numbers (device licensing) or client user ids (user licensing) Apple holds for the app.
    static func appleHolders(_ env: SyncEnvironment, _ uId: String, adamID: String = app) throws -> Set<String> {
        Set(
            try env.core.assignments(uId: uId).filter { $0.adamId == adamID }.map {
                $0.serialNumber ?? $0.clientUserId ?? ""
            }
        )
    }

    /// A tenant with one synced token whose app has `licenses` licenses, and its client and the app's asset id.
    static func withApp(
        licenses: Int,
        _ body: (SyncEnvironment, LedgerFixture, VPPClient, String) async throws -> Void
    ) async throws {
        try await SyncEnvironment.run { env in
            let fixture = try await LedgerFixture.make(
                env,
                assets: [.init(adamId: Self.app, productType: .app, totalCount: licenses)]
            )
            defer { Task { await fixture.client.close() } }
            try await body(env, fixture, fixture.client, try await fixture.assetID(Self.app))
        }
    }

    // MARK: 1, 2

    @Test("R8, R15: GetLicenseCounts, Asset.counts and GetLicenseUsage give the same counts, each meaning one thing")
    func countsAgree() async throws {
        try await Self.withApp(licenses: 20) { env, fixture, client, assetID in
            let group = try await StoryRPC.userGroup(
                client,
                "year-7",
                users: (0..<60).map { String(format: "u%03d", $0) }
            )
            let assignment = try await StoryRPC.assign(client, assetID, group, type: .user)
            #expect(assignment.targets == 60)
            #expect(assignment.granted == 20)
            #expect(assignment.waiting == 40)

            // Right away (seats reserved, Apple not yet answered) and once settled, every call agrees.
            for moment in ["at once", "settled"] {
                if moment == "settled" { _ = try await fixture.settled(assetID) }
                let counts = try await Self.allCounts(client, assetID)
                let reference = try #require(counts["GetLicenseCounts"])
                // Apple's own figures (apple_*) move whenever a sync lands, which may be between two calls (the push
                // asks for one after registering users); the ledger's must be equal in every call.
                func ledger(_ counts: VppV1.LicenseCounts) -> [UInt32] {
                    [
                        counts.total, counts.inUse, counts.available, counts.reserved, counts.waiting,
                        counts.heldElsewhere,
                        counts.overAssigned,
                    ]
                }
                for (call, value) in counts {
                    #expect(
                        ledger(value) == ledger(reference),
                        "\(moment): \(call) says \(value), GetLicenseCounts \(reference)"
                    )
                }
                #expect(reference.total == 20)
                #expect(reference.inUse == 20, "\(moment): in_use counts every seat held here, reserved ones too")
                #expect(reference.available == 0)
                #expect(reference.waiting == 40)
                #expect(reference.reserved <= reference.inUse)
                #expect(reference.available == reference.total - reference.inUse)
            }
            #expect(try Self.appleHolders(env, fixture.uId).count == 20)
        }
    }

    @Test("R23: one target has one state for one asset, whichever call asks; usage counts add up to the entries")
    func statesAgree() async throws {
        try await Self.withApp(licenses: 10) { env, fixture, client, assetID in
            let users = (0..<15).map { String(format: "s%03d", $0) }
            let group = try await StoryRPC.userGroup(client, "class", users: users)
            _ = try await StoryRPC.assign(client, assetID, group, type: .user)
            _ = try await fixture.settled(assetID)

            func check(_ label: String) async throws -> [VppV1.InstallState: Int] {
                let listed = try await StoryRPC.entries(client, assetID)
                var byState: [VppV1.InstallState: Int] = [:]
                for entry in listed {
                    byState[entry.state, default: 0] += 1
                    var status = VppV1.GetUserStatusRequest()
                    status.externalId = entry.userExternalId
                    let user = try await client.call(VppV1.LicenseService.GetUserStatus.self, status)
                    let same = try #require(user.entries.first { $0.assetId == assetID })
                    #expect(
                        same.state == entry.state,
                        "\(label): \(entry.userExternalId) is \(entry.state) in ListLicenses, \(same.state) in GetUserStatus"
                    )
                    #expect(same.reason == entry.reason)
                    // The device's view shows its owner's user license the same way.
                    var device = VppV1.GetDeviceStatusRequest()
                    device.serialNumber = "D-\(entry.userExternalId)"
                    let onDevice = try await client.call(VppV1.LicenseService.GetDeviceStatus.self, device)
                    #expect(onDevice.entries.first { $0.assetId == assetID }?.state == entry.state)
                }
                var usageRequest = VppV1.GetLicenseUsageRequest()
                usageRequest.assetId = assetID
                let usage = try await client.call(VppV1.LicenseService.GetLicenseUsage.self, usageRequest)
                #expect(Int(usage.pending) == byState[.pending, default: 0], "\(label)")
                #expect(Int(usage.waitingForInvitation) == byState[.waitingForInvitation, default: 0], "\(label)")
                #expect(Int(usage.waitingForLicense) == byState[.waitingForLicense, default: 0], "\(label)")
                #expect(Int(usage.installed) == byState[.installed, default: 0], "\(label)")
                let holders = Int(usage.pending + usage.waitingForInvitation + usage.installed)
                #expect(holders == 10, "\(label): 10 holders, counted once each")
                return byState
            }
            // R20: registered at Apple, not accepted yet: every holder waits for its invitation.
            var states = try await check("invited")
            #expect(states[.waitingForInvitation] == 10)
            #expect(states[.waitingForLicense] == 5)

            // Four accept; the next sync learns it: they are pending, the others still wait for their invitation.
            let holders = try await StoryRPC.entries(client, assetID).filter { $0.state != .waitingForLicense }.prefix(
                4
            )
            for entry in holders {
                let userID = try await StoryRPC.userID(client, entry.userExternalId)
                try env.core.acceptInvitation(uId: fixture.uId, clientUserId: userID)
            }
            // The sync after any already under way (it may have read Apple's users before they accepted).
            for _ in 0..<2 {
                let job = try await env.syncNow(client, fixture.tokenID)
                _ = try await env.waitForJob(client, jobID: job.id) { !$0.isActive }
            }
            states = try await check("four accepted")
            #expect(states[.pending] == 4)
            #expect(states[.waitingForInvitation] == 6)
        }
    }

    // MARK: 3

    @Test(
        "R15, R17: freed licenses are released at Apple and granted to the waiters in line, Apple and the ledger agreeing"
    )
    func freedLicensesReachWaiters() async throws {
        try await Self.withApp(licenses: 10) { env, fixture, client, assetID in
            let holdersSerials = (0..<10).map { String(format: "H%02d", $0) }
            let waitersSerials = (0..<5).map { String(format: "W%02d", $0) }
            let holders = try await StoryRPC.deviceGroup(client, "holders", serials: holdersSerials)
            let waiters = try await StoryRPC.deviceGroup(client, "waiters", serials: waitersSerials)
            let first = try await StoryRPC.assign(client, assetID, holders, type: .device)
            _ = try await StoryRPC.assign(client, assetID, waiters, type: .device)
            _ = try await fixture.settled(assetID)
            #expect(try Self.appleHolders(env, fixture.uId) == Set(holdersSerials))
            var listed = try await StoryRPC.entries(client, assetID)
            #expect(listed.filter { $0.state == .waitingForLicense }.map(\.serialNumber) == waitersSerials)
            #expect(listed.filter { $0.state == .waitingForLicense }.map(\.queuePosition) == [1, 2, 3, 4, 5])

            // R17: the holders' assignment turns to Uninstall: seats stay held until removal is reported.
            var update = VppV1.UpdateAssignmentRequest()
            update.assignmentId = first.id
            update.action = .uninstall
            _ = try await client.call(VppV1.AssignmentService.UpdateAssignment.self, update)
            listed = try await StoryRPC.entries(client, assetID)
            #expect(listed.filter { $0.state == .removing }.count == 10)
            #expect(listed.filter { $0.state == .waitingForLicense }.count == 5)

            // Five devices report the app removed.
            var report = VppV1.ReportInstallResultsRequest()
            report.reports = holdersSerials.prefix(5).map { serial in
                var item = VppV1.InstallReport()
                item.serialNumber = serial
                item.adamId = Self.app
                item.outcome = .removed
                return item
            }
            let reportedAt = ContinuousClock.now
            let reported = try await client.call(VppV1.LicenseService.ReportInstallResults.self, report)
            #expect(reported.applied == 5)
            #expect(reported.freedLicenses == 5)
            _ = try await fixture.settled(assetID)
            let served = reportedAt.duration(to: .now)
            // Apple released the five and assigned the five waiters; the ledger holds exactly what Apple holds.
            let atApple = try Self.appleHolders(env, fixture.uId)
            #expect(atApple == Set(holdersSerials.suffix(5) + waitersSerials), "Apple holds \(atApple.sorted())")
            listed = try await StoryRPC.entries(client, assetID)
            #expect(listed.filter { $0.state == .pending }.map(\.serialNumber).sorted() == waitersSerials)
            #expect(listed.filter { $0.state == .waitingForLicense }.isEmpty)
            var counts = try #require(try await Self.allCounts(client, assetID)["GetLicenseCounts"])
            #expect(counts.inUse == 10)
            #expect(counts.available == 0)
            print("R17: REMOVED reported to the waiters' grants confirmed at Apple: \(served)")

            // A sixth removal frees one seat that nobody waits for: in use 9, one available, Apple holds 9.
            report.reports = [report.reports[0]]
            report.reports[0].serialNumber = holdersSerials[5]
            _ = try await client.call(VppV1.LicenseService.ReportInstallResults.self, report)
            _ = try await fixture.settled(assetID)
            for (call, value) in try await Self.allCounts(client, assetID) {
                #expect(value.inUse == 9, "\(call): in_use \(value.inUse)")
                #expect(value.available == 1, "\(call): available \(value.available)")
            }
            #expect(try Self.appleHolders(env, fixture.uId).count == 9)
            counts = try #require(try await Self.allCounts(client, assetID)["GetLicenseCounts"])
            #expect(counts.waiting == 0)
        }
    }

    @Test(
        "R15: licenses refunded at Apple revoke nothing; every view says over_assigned, and nobody new gets a seat until the asset is back under its count"
    )
    func refundLeavesAssetOver() async throws {
        try await Self.withApp(licenses: 10) { env, fixture, client, assetID in
            let firstSerials = (0..<5).map { String(format: "A%02d", $0) }
            let secondSerials = (0..<5).map { String(format: "B%02d", $0) }
            let waiterSerials = ["W00", "W01"]
            let first = try await StoryRPC.assign(
                client,
                assetID,
                try await StoryRPC.deviceGroup(client, "first", serials: firstSerials),
                type: .device
            )
            _ = try await StoryRPC.assign(
                client,
                assetID,
                try await StoryRPC.deviceGroup(client, "second", serials: secondSerials),
                type: .device
            )
            _ = try await StoryRPC.assign(
                client,
                assetID,
                try await StoryRPC.deviceGroup(client, "waiters", serials: waiterSerials),
                type: .device
            )
            _ = try await fixture.settled(assetID)
            #expect(try Self.appleHolders(env, fixture.uId).count == 10)

            func syncFully() async throws {
                let job = try await env.syncNow(client, fixture.tokenID, full: true)
                let ended = try await env.waitForJob(client, jobID: job.id, timeout: .seconds(60)) { !$0.isActive }
                #expect(ended.state == .succeeded, "sync: \(ended.state) \(ended.error)")
                _ = try await fixture.settled(assetID)
            }
            func expectCounts(
                _ moment: String,
                inUse: UInt32,
                overAssigned: UInt32,
                waiting: UInt32,
                available: UInt32 = 0
            ) async throws {
                for (call, counts) in try await Self.allCounts(client, assetID) {
                    #expect(counts.total == 6, "\(moment): \(call).total \(counts.total)")
                    #expect(counts.inUse == inUse, "\(moment): \(call).in_use \(counts.inUse)")
                    #expect(
                        counts.overAssigned == overAssigned,
                        "\(moment): \(call).over_assigned \(counts.overAssigned)"
                    )
                    #expect(counts.available == available, "\(moment): \(call).available \(counts.available)")
                    #expect(counts.waiting == waiting, "\(moment): \(call).waiting \(counts.waiting)")
                }
                #expect(
                    try Self.appleHolders(env, fixture.uId).count == Int(inUse),
                    "\(moment): Apple holds what the ledger holds"
                )
            }

            // Four licenses refunded at Apple; the next full sync reads total 6. Nobody loses a seat.
            try env.core.refund(uId: fixture.uId, adamId: Self.app, count: 4)
            try await syncFully()
            try await expectCounts("after the refund", inUse: 10, overAssigned: 4, waiting: 2)
            var listed = try await StoryRPC.entries(client, assetID)
            #expect(listed.filter { $0.state == .pending }.count == 10)
            #expect(listed.filter { $0.state == .waitingForLicense }.map(\.serialNumber) == waiterSerials)

            // The first group is uninstalled; three devices report the app removed: still over by one, the line waits.
            var update = VppV1.UpdateAssignmentRequest()
            update.assignmentId = first.id
            update.action = .uninstall
            _ = try await client.call(VppV1.AssignmentService.UpdateAssignment.self, update)
            func removed(_ serials: [String]) async throws {
                var report = VppV1.ReportInstallResultsRequest()
                report.reports = serials.map { serial in
                    var item = VppV1.InstallReport()
                    item.serialNumber = serial
                    item.adamId = Self.app
                    item.outcome = .removed
                    return item
                }
                let answer = try await client.call(VppV1.LicenseService.ReportInstallResults.self, report)
                #expect(answer.freedLicenses == UInt32(serials.count))
                _ = try await fixture.settled(assetID)
            }
            try await removed(Array(firstSerials.prefix(3)))
            try await expectCounts("three removed", inUse: 7, overAssigned: 1, waiting: 2)

            // Two more: one seat under the count, so the first waiter is served (in line order), and Apple agrees.
            try await removed(Array(firstSerials.suffix(2)))
            try await expectCounts("five removed", inUse: 6, overAssigned: 0, waiting: 1)
            listed = try await StoryRPC.entries(client, assetID)
            #expect(listed.first { $0.serialNumber == "W00" }?.state == .pending)
            #expect(listed.first { $0.serialNumber == "W01" }?.state == .waitingForLicense)
            #expect(listed.first { $0.serialNumber == "W01" }?.queuePosition == 1)
            #expect(try Self.appleHolders(env, fixture.uId) == Set(secondSerials + ["W00"]))
        }
    }

    @Test("R17: targets wanted again before their removal keep their seats, and Apple confirms them")
    func requiredAgainBeforeRemoval() async throws {
        try await Self.withApp(licenses: 3) { env, fixture, client, assetID in
            _ = try await StoryRPC.userGroup(client, "people", users: ["u1", "u2"])
            // User licensing through a device group: each device's owner (R18).
            let group = try await StoryRPC.group(client, "tablets", kind: .device, members: ["D-u1", "D-u2"])
            let assignment = try await StoryRPC.assign(client, assetID, group, type: .user)
            _ = try await fixture.settled(assetID)
            for action in [VppV1.AssignmentAction.uninstall, .required] {
                var update = VppV1.UpdateAssignmentRequest()
                update.assignmentId = assignment.id
                update.action = action
                _ = try await client.call(VppV1.AssignmentService.UpdateAssignment.self, update)
                let usage = try await fixture.settled(assetID)
                #expect(usage.counts?.reserved == 0, "after \(action): nothing left unconfirmed")
                #expect(usage.counts?.inUse == 2)
                #expect(try Self.appleHolders(env, fixture.uId).count == 2)
            }
            let listed = try await StoryRPC.entries(client, assetID)
            #expect(listed.map(\.state) == [.waitingForInvitation, .waitingForInvitation])
        }
    }

    // MARK: 4, 5

    @Test("R19: a second user with the same Apple ID is refused; a shared e-mail is flagged in both users' status")
    func uniqueAppleID() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            let (_, client) = try await env.tenant("R19")
            defer { Task { await client.close() } }
            func user(_ id: String, appleID: String = "", email: String = "") -> VppV1.UserInput {
                var input = VppV1.UserInput()
                input.externalId = id
                input.appleId = appleID
                input.email = email
                return input
            }
            var request = VppV1.UpsertUsersRequest()
            request.users = [user("ann", appleID: "Ann@Example.com", email: "ann@example.com")]
            #expect(try await client.call(VppV1.DirectoryService.UpsertUsers.self, request).created == 1)

            // Another user with Ann's Apple ID (case differs): refused, naming the user who has it.
            request.users = [user("impostor", appleID: "ann@example.COM"), user("bob", appleID: "bob@example.com")]
            var response = try await client.call(VppV1.DirectoryService.UpsertUsers.self, request)
            #expect(response.created == 1)
            #expect(response.errors.count == 1)
            #expect(response.errors.first?.key == "impostor")
            #expect(response.errors.first?.message.contains("\"ann\"") == true)
            #expect(response.errors.first?.message.contains("R19") == true)
            // Ann herself may be written again with her own Apple ID.
            request.users = [user("ann", appleID: "ann@example.com", email: "ann@example.com")]
            response = try await client.call(VppV1.DirectoryService.UpsertUsers.self, request)
            #expect(response.errors.isEmpty)
            // Two users with one Apple ID in one request: both refused.
            request.users = [user("c1", appleID: "same@example.com"), user("c2", appleID: "SAME@example.com")]
            response = try await client.call(VppV1.DirectoryService.UpsertUsers.self, request)
            #expect(response.created == 0)
            #expect(response.errors.map(\.key).sorted() == ["c1", "c2"])

            // A shared e-mail is accepted, and both users' status says what it breaks.
            request.users = [user("dan", email: "class@example.com"), user("eve", email: "Class@example.com")]
            response = try await client.call(VppV1.DirectoryService.UpsertUsers.self, request)
            #expect(response.created == 2)
            for (who, other) in [("dan", "eve"), ("eve", "dan")] {
                var status = VppV1.GetUserStatusRequest()
                status.externalId = who
                let notes = try await client.call(VppV1.LicenseService.GetUserStatus.self, status).notes
                #expect(notes.contains { $0.contains("\"\(other)\"") && $0.contains("R19") }, "\(who): \(notes)")
            }
        }
    }

    @Test("R20: an invited user's invitation_url is Apple's template with their invite code; empty once associated")
    func invitationURL() async throws {
        try await Self.withApp(licenses: 5) { env, fixture, client, assetID in
            let group = try await StoryRPC.userGroup(client, "invited", users: ["ivy"])
            _ = try await StoryRPC.assign(client, assetID, group, type: .user)
            _ = try await fixture.settled(assetID)
            var request = VppV1.GetEntryRequest()
            request.by = .key("ivy")
            // The push registered Ivy at Apple and asked for the sync that reads her invitation.
            var ivy = try await client.call(VppV1.DirectoryService.GetUser.self, request)
            let deadline = ContinuousClock.now + .seconds(20)
            while ivy.invitationUrl.isEmpty, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                ivy = try await client.call(VppV1.DirectoryService.GetUser.self, request)
            }
            #expect(ivy.vppState == .invited)
            let atApple = try #require(try env.core.users(uId: fixture.uId).first { $0.clientUserId == ivy.id })
            let code = try #require(atApple.inviteCode)
            #expect(ivy.invitationUrl.hasSuffix("inviteCode=\(code)"), "\(ivy.invitationUrl)")
            #expect(ivy.invitationUrl.hasPrefix("http"))
            #expect(!ivy.invitationUrl.contains("%inviteCode%") && !ivy.invitationUrl.contains("%25inviteCode%25"))

            try env.core.acceptInvitation(uId: fixture.uId, clientUserId: ivy.id)
            // "Sync now" joins a sync already queued or running, which may have read Apple's users before Ivy
            // accepted: the sync after it sees her accepted.
            for _ in 0..<2 {
                let job = try await env.syncNow(client, fixture.tokenID)
                _ = try await env.waitForJob(client, jobID: job.id) { !$0.isActive }
            }
            ivy = try await client.call(VppV1.DirectoryService.GetUser.self, request)
            #expect(ivy.vppState == .associated)
            #expect(ivy.invitationUrl.isEmpty)
        }
    }

    // MARK: 6

    @Test("R23: every state carries a reason that says why and what would change it")
    func everyStateHasAReason() async throws {
        try await Self.withApp(licenses: 3) { env, fixture, client, assetID in
            let lab = try await StoryRPC.deviceGroup(client, "lab", serials: ["R1", "R2", "R3", "R4", "R5"])
            let offered = try await StoryRPC.deviceGroup(client, "offered", serials: ["O1"])
            _ = try await StoryRPC.assign(client, assetID, lab, type: .device)
            _ = try await StoryRPC.assign(client, assetID, offered, action: .available, type: .device)
            _ = try await fixture.settled(assetID)
            var report = VppV1.ReportInstallResultsRequest()
            report.reports = [("R1", VppV1.InstallOutcome.installed, ""), ("R2", .failed, "disk full")].map {
                serial,
                outcome,
                reason in
                var item = VppV1.InstallReport()
                item.serialNumber = serial
                item.adamId = Self.app
                item.outcome = outcome
                item.reason = reason
                return item
            }
            _ = try await client.call(VppV1.LicenseService.ReportInstallResults.self, report)
            let listed = try await StoryRPC.entries(client, assetID)
            let states = Set(listed.map(\.state))
            #expect(states == [.installed, .failed, .pending, .waitingForLicense, .available])
            for entry in listed {
                #expect(!entry.reason.isEmpty, "\(entry.serialNumber) \(entry.state) has no reason")
            }
            let waiters = listed.filter { $0.state == .waitingForLicense }
            #expect(waiters.map(\.reason).allSatisfy { $0.contains("in line") && $0.contains("R15") })
            #expect(waiters.first?.reason.contains("Place 1") == true)
            #expect(listed.first { $0.serialNumber == "R2" }?.reason.contains("disk full") == true)
        }
    }

    // MARK: 7

    @Test(
        "R14: device groups are for tenants created after January 2017 (from 2017-02-01 UTC), said the same everywhere"
    )
    func deviceGroupCutoff() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            // 2017-01-31T23:59:59Z and 2017-02-01T00:00:00Z.
            for (created, allowed) in [(1_485_907_199, false), (1_485_907_200, true)] {
                let (tenant, client) = try await env.tenant("R14 \(created)") { request in
                    request.createdAt = {
                        var t = VppV1.Timestamp()
                        t.seconds = Int64(created)
                        return t
                    }()
                }
                defer { Task { await client.close() } }
                #expect(tenant.deviceGroupAssignmentAllowed == allowed, "created at \(created)")
            }
        }
        // The documents and the contract name the same date.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        for file in [
            "Protos/vpp/v1/operator.proto", "Protos/vpp/v1/directory.proto", "docs/licenses.md", "docs/directory.md",
        ] {
            let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") where line.contains("R14") && line.contains("2017") {
                #expect(line.contains("2017-02-01"), "\(file): \(line)")
                #expect(!line.contains("2017-01-01") && !line.contains("before February 2017"), "\(file): \(line)")
            }
        }
    }
}
