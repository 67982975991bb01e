import AppleVPP
import AppleVPPSimulator
import Foundation
import Testing
import VPPClient
import VPPProto
import VPPTestSupport
import VPPTesting

/// Issue 18 as a client and Apple see it, over the RPC port (real PostgreSQL, the simulator sending notifications as
/// Apple does): each type's effect, repeats, a dropped notification made up for by polling, and a rival MDM.
@Suite("Apple's notifications: the story over RPC", .timeLimit(.minutes(5)))
struct NotificationStoryTests {
    static let app = SyncEnvironment.pages

    struct Fixture {
        let env: SyncEnvironment
        let client: VPPClient
        let tenantID: String
        let uId: String
        let tokenID: String
        let assetID: String
    }

    /// Events complete on their own after 100 ms, nobody polling (as at Apple); Apple retries a notification after
    /// 200 and 400 ms. `notifiedPoll` is how long a push waits for a notification before it polls: long by default,
    /// so a test passes only if notifications did the work.
    static func run(
        licenses: Int,
        notifiedPoll: Duration = .seconds(120),
        _ body: (Fixture) async throws -> Void
    ) async throws {
        try await SyncEnvironment.run(
            simulator: SimulatorConfiguration(
                eventCompletion: .afterDelay(.milliseconds(100)),
                notificationRetryDelays: [.milliseconds(200), .milliseconds(400)]
            ),
            notifications: true,
            eventPollInterval: .seconds(1),
            notifiedPollInterval: notifiedPoll
        ) { env in
            let created = try env.core.createLocation(
                .init(
                    locationName: "Notified School",
                    assets: [.init(adamId: Self.app, productType: .app, totalCount: licenses)]
                )
            )
            let (tenant, client) = try await env.tenant("Notified")
            defer { Task { await client.close() } }
            let uploaded = try await env.upload(client, created.vppToken)
            let token = try #require(uploaded.token)
            _ = try await env.waitForJob(client, jobID: uploaded.syncJobId) { !$0.isActive }
            let assetID = try #require(try await StoryRPC.assetID(client, adamID: Self.app))
            try await body(
                Fixture(
                    env: env,
                    client: client,
                    tenantID: tenant.id,
                    uId: created.uId,
                    tokenID: token.id,
                    assetID: assetID
                )
            )
        }
    }

    /// The `/status` requests the simulator answered.
    static func statusPolls(_ env: SyncEnvironment) -> Int {
        env.core.recordedRequests().filter { $0.path == "/status" }.count
    }

    @Test("the upload subscribes the token: Apple's TEST_NOTIFICATION reaches vppd with the token's own secret")
    func subscribedAtUpload() async throws {
        try await Self.run(licenses: 3) { fixture in
            let token = try await fixture.env.getToken(fixture.client, fixture.tokenID)
            let notifications = try #require(token.notifications)
            let base = try #require(fixture.env.server.notificationURL)
            #expect(notifications.subscribed)
            #expect(notifications.url == "\(base)/\(fixture.tenantID)/\(fixture.tokenID)")
            #expect(notifications.lastError.isEmpty)
            #expect(notifications.flowing)
            let test = fixture.env.core.notificationLog(uId: fixture.uId).filter { $0.notificationType == .test }
            #expect(test.contains { $0.status == .delivered })
            // R4: Apple holds this service's URL, and the secret is not the token file.
            #expect(
                await eventually {
                    let listed = try await fixture.client.call(
                        VppV1.TokenService.ListTokenNotifications.self,
                        VppV1.ListTokenNotificationsRequest(tokenId: fixture.tokenID)
                    )
                    return listed.notifications.contains { $0.type == "TEST_NOTIFICATION" && $0.processedAt != nil }
                }
            )
        }
    }

    @Test("ASSET_MANAGEMENT: CreateAssignment's licenses are confirmed by Apple's notification, with no /status poll")
    func assignmentsConfirmedByNotification() async throws {
        try await Self.run(licenses: 5) { fixture in
            let before = Self.statusPolls(fixture.env)
            let group = try await StoryRPC.deviceGroup(fixture.client, "carts", serials: ["N-1", "N-2", "N-3"])
            _ = try await StoryRPC.assign(fixture.client, fixture.assetID, group, type: .device)
            #expect(
                await eventually(timeout: .seconds(30)) {
                    let counts = try await StoryRPC.counts(fixture.client, fixture.assetID)
                    return counts.inUse == 3 && counts.reserved == 0
                }
            )
            let holders = try fixture.env.core.assignments(uId: fixture.uId).compactMap(\.serialNumber)
            #expect(Set(holders) == ["N-1", "N-2", "N-3"])
            #expect(Self.statusPolls(fixture.env) == before, "the grant came from the notification, not a poll")
            let entries = try await StoryRPC.entries(fixture.client, fixture.assetID)
            #expect(entries.allSatisfy { $0.state == .pending })
        }
    }

    @Test("a dropped ASSET_MANAGEMENT notification is made up for by polling, and the token polls at its fast pace")
    func droppedNotificationIsPolledFor() async throws {
        try await Self.run(licenses: 5, notifiedPoll: .seconds(2)) { fixture in
            fixture.env.core.injectNotificationFault(NotificationFault(kind: .drop, count: 10, type: .assetManagement))
            let group = try await StoryRPC.deviceGroup(fixture.client, "carts", serials: ["D-1", "D-2"])
            _ = try await StoryRPC.assign(fixture.client, fixture.assetID, group, type: .device)
            #expect(
                await eventually(timeout: .seconds(30)) {
                    let counts = try await StoryRPC.counts(fixture.client, fixture.assetID)
                    return counts.inUse == 2 && counts.reserved == 0
                }
            )
            #expect(Self.statusPolls(fixture.env) > 0)
            let token = try await fixture.env.getToken(fixture.client, fixture.tokenID)
            #expect(token.notifications?.missedAt != nil)
            #expect(token.notifications?.flowing == false)
        }
    }

    @Test("R15, ASSET_COUNT: licenses bought at Apple serve the waiters at once; a refund shows what is over-assigned")
    func purchaseServesWaiters() async throws {
        try await Self.run(licenses: 1) { fixture in
            let group = try await StoryRPC.deviceGroup(fixture.client, "lab", serials: ["W-1", "W-2", "W-3"])
            _ = try await StoryRPC.assign(fixture.client, fixture.assetID, group, type: .device)
            #expect(
                await eventually {
                    let counts = try await StoryRPC.counts(fixture.client, fixture.assetID)
                    return counts.inUse == 1 && counts.waiting == 2 && counts.reserved == 0
                }
            )
            let syncsBefore = try await Self.syncJobs(fixture)
            try fixture.env.core.addPurchase(uId: fixture.uId, adamId: Self.app, count: 2)
            #expect(
                await eventually(timeout: .seconds(30)) {
                    let counts = try await StoryRPC.counts(fixture.client, fixture.assetID)
                    return counts.total == 3 && counts.inUse == 3 && counts.waiting == 0 && counts.reserved == 0
                }
            )
            #expect(try await Self.syncJobs(fixture) == syncsBefore, "served by the notification, not a sync")
            #expect(Set(try fixture.env.core.assignments(uId: fixture.uId).compactMap(\.serialNumber)).count == 3)

            // A refund: nothing is revoked, the over-assignment shows.
            try fixture.env.core.refund(uId: fixture.uId, adamId: Self.app, count: 2)
            #expect(
                await eventually(timeout: .seconds(30)) {
                    let counts = try await StoryRPC.counts(fixture.client, fixture.assetID)
                    return counts.total == 1 && counts.overAssigned == 2 && counts.inUse == 3
                }
            )
            #expect(try fixture.env.core.assignments(uId: fixture.uId).count == 3)
        }
    }

    @Test("R20, USER_ASSOCIATED: a user who accepts the invitation has their installs go ahead without a sync")
    func acceptedInvitationReleasesInstalls() async throws {
        try await Self.run(licenses: 5) { fixture in
            let group = try await StoryRPC.userGroup(fixture.client, "class", users: ["ann", "ben"])
            _ = try await StoryRPC.assign(fixture.client, fixture.assetID, group, type: .user)
            // USER_MANAGEMENT told vppd the users were registered (and their invite codes), ASSET_MANAGEMENT that the
            // licenses are theirs: both wait for the invitation.
            #expect(
                await eventually(timeout: .seconds(30)) {
                    let entries = try await StoryRPC.entries(fixture.client, fixture.assetID)
                    guard entries.count == 2, entries.allSatisfy({ $0.state == .waitingForInvitation }) else {
                        return false
                    }
                    for name in ["ann", "ben"] {
                        var request = VppV1.GetEntryRequest()
                        request.by = .key(name)
                        let user = try await fixture.client.call(VppV1.DirectoryService.GetUser.self, request)
                        // Invited, with the link: from USER_MANAGEMENT's notification, no sync needed.
                        guard user.vppState == .invited, !user.invitationUrl.isEmpty else { return false }
                    }
                    return true
                }
            )
            let ann = try await StoryRPC.userID(fixture.client, "ann")
            let syncsBefore = try await Self.syncJobs(fixture)
            try fixture.env.core.acceptInvitation(uId: fixture.uId, clientUserId: ann)
            #expect(
                await eventually(timeout: .seconds(30)) {
                    let entries = try await StoryRPC.entries(fixture.client, fixture.assetID)
                    return entries.first { $0.userExternalId == "ann" }?.state == .pending
                }
            )
            let entries = try await StoryRPC.entries(fixture.client, fixture.assetID)
            #expect(entries.first { $0.userExternalId == "ben" }?.state == .waitingForInvitation)
            #expect(try await Self.syncJobs(fixture) == syncsBefore, "seen by the notification, not a sync")
        }
    }

    @Test("repeated and reordered notifications change nothing more than one of each")
    func repeatsChangeNothing() async throws {
        try await Self.run(licenses: 5) { fixture in
            fixture.env.core.injectNotificationFault(NotificationFault(kind: .duplicate, count: 20))
            let group = try await StoryRPC.deviceGroup(fixture.client, "carts", serials: ["R-1", "R-2"])
            _ = try await StoryRPC.assign(fixture.client, fixture.assetID, group, type: .device)
            try fixture.env.core.addPurchase(uId: fixture.uId, adamId: Self.app, count: 1)
            #expect(
                await eventually(timeout: .seconds(30)) {
                    let counts = try await StoryRPC.counts(fixture.client, fixture.assetID)
                    return counts.inUse == 2 && counts.reserved == 0 && counts.total == 6
                }
            )
            let produced = fixture.env.core.notificationLog(uId: fixture.uId)
            #expect(produced.contains { $0.fault == .duplicate })
            // Each notification recorded once, however often it came.
            #expect(
                await eventually {
                    let listed = try await fixture.client.call(
                        VppV1.TokenService.ListTokenNotifications.self,
                        VppV1.ListTokenNotificationsRequest(tokenId: fixture.tokenID, limit: 500)
                    )
                    let delivered = Set(produced.filter { $0.status == .delivered }.map(\.notificationId))
                    return Set(listed.notifications.map(\.notificationId)) == delivered
                        && listed.notifications.count == delivered.count
                }
            )
            let counts = try await StoryRPC.counts(fixture.client, fixture.assetID)
            #expect(counts.total == 6)
            #expect(counts.inUse == 2)
        }
    }

    @Test("R4: a rival MDM re-pointing the token's notifications is detected by the next sync")
    func rivalNotificationURLIsDetected() async throws {
        try await Self.run(licenses: 2) { fixture in
            try fixture.env.core.setClientConfig(
                uId: fixture.uId,
                notificationUrl: "https://rival-mdm.example.com/hooks/vpp",
                notificationAuthToken: "rival-secret"
            )
            let job = try await fixture.env.syncNow(fixture.client, fixture.tokenID)
            let finished = try await fixture.env.waitForJob(fixture.client, jobID: job.id) { !$0.isActive }
            #expect(finished.state == .failed)
            let token = try await fixture.env.getToken(fixture.client, fixture.tokenID)
            #expect(token.state == .claimedElsewhere)
            #expect(token.stateReason.contains("rival-mdm.example.com"), "\(token.stateReason)")
        }
    }

    static func syncJobs(_ fixture: Fixture) async throws -> Int {
        try await fixture.env.server.pool.query(
            "SELECT count(*)::bigint FROM vpp_control.jobs WHERE kind = 'sync' AND tenant_id = \(UUID(uuidString: fixture.tenantID)!)"
        ).single().decode(Int.self, at: 0)
    }
}
