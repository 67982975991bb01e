import AppleVPP
import AppleVPPSimulator
import Foundation
import NIOConcurrencyHelpers
import Testing
import VPPClient
import VPPProto
import VPPStorage
import VPPTestSupport
import VPPTesting
import VPPWire

/// Issue 19 as a client sees it over the RPC port (real PostgreSQL, the simulator): every kind of change in the feed,
/// in commit order, agreeing with what the other RPCs say; a stream that resumes from its cursor sees every change
/// exactly once.
@Suite("The change feed: the story over RPC", .timeLimit(.minutes(5)))
struct ChangeFeedStoryTests {
    static let app = SyncEnvironment.pages

    /// Every change of the tenant, read page by page with ListChanges from the first.
    static func listAll(_ client: VPPClient, kinds: [VppV1.ChangeKind] = [], pageSize: UInt32 = 7) async throws
        -> [VppV1.Change]
    {
        var all: [VppV1.Change] = []
        var request = VppV1.ListChangesRequest(start: .afterCursor, cursor: 0, kinds: kinds, pageSize: pageSize)
        while true {
            let batch = try await client.call(VppV1.ChangeService.ListChanges.self, request)
            all += batch.changes
            if batch.cursor == batch.head && batch.changes.count < Int(pageSize) { return all }
            #expect(batch.cursor > request.cursor, "ListChanges did not move on from \(request.cursor)")
            request.cursor = batch.cursor
        }
    }

    /// Follows WatchChanges in the background, keeping what it got.
    final class Watcher: Sendable {
        let received = NIOLockedValueBox<[VppV1.Change]>([])
        let cursor = NIOLockedValueBox<UInt64>(0)
        let ended = NIOLockedValueBox<(any Error)?>(nil)
        let task: NIOLockedValueBox<Task<Void, Never>?> = NIOLockedValueBox(nil)

        init(_ client: VPPClient, _ request: VppV1.WatchChangesRequest) {
            self.start(client, request)
        }

        func start(_ client: VPPClient, _ request: VppV1.WatchChangesRequest) {
            let task = Task {
                do {
                    for try await batch in client.stream(VppV1.ChangeService.WatchChanges.self, request) {
                        self.received.withLockedValue { $0 += batch.changes }
                        self.cursor.withLockedValue { $0 = batch.cursor }
                    }
                } catch {
                    self.ended.withLockedValue { $0 = error }
                }
            }
            self.task.withLockedValue { $0 = task }
        }

        /// Stops the stream (as a client that goes away) and waits until it has.
        func stop() async {
            let task = self.task.withLockedValue { $0 }
            task?.cancel()
            await task?.value
        }

        var changes: [VppV1.Change] { self.received.withLockedValue { $0 } }

        /// Waits until the watcher has seen everything up to `sequence`.
        func waitFor(_ sequence: UInt64, timeout: Duration = .seconds(30)) async -> Bool {
            await eventually(timeout: timeout) { self.cursor.withLockedValue { $0 } >= sequence }
        }
    }

    static func head(_ client: VPPClient) async throws -> UInt64 {
        try await client.call(
            VppV1.ChangeService.ListChanges.self,
            VppV1.ListChangesRequest(start: .now, pageSize: 1)
        ).head
    }

    static func report(_ client: VPPClient, _ serials: [String], _ outcome: VppV1.InstallOutcome) async throws {
        var report = VppV1.ReportInstallResultsRequest()
        report.reports = serials.map { serial in
            var item = VppV1.InstallReport()
            item.serialNumber = serial
            item.adamId = Self.app
            item.outcome = outcome
            return item
        }
        _ = try await client.call(VppV1.LicenseService.ReportInstallResults.self, report)
    }

    /// Waits until the ledger has nothing left to tell Apple and nothing unconfirmed.
    static func settled(_ env: SyncEnvironment, _ client: VPPClient, tenantID: UUID, _ assetID: String) async -> Bool {
        await eventually {
            let counts = try await StoryRPC.counts(client, assetID)
            let outbox = try await env.server.storage.withTenant(tenantID) { transaction in
                try await transaction.query("SELECT count(*)::bigint FROM apple_outbox").single().decode(
                    Int.self,
                    at: 0
                )
            }
            return counts.reserved == 0 && outbox == 0
        }
    }

    @Test(
        "issue 19: every kind of change is in the feed once, numbered in commit order, and agrees with ListLicenses and GetLicenseCounts (R4, R7, R8, R13, R15, R17)"
    )
    func everyKind() async throws {
        try await SyncEnvironment.run { env in
            let created = try env.core.createLocation(
                .init(locationName: "Feed School", assets: [.init(adamId: Self.app, productType: .app, totalCount: 3)])
            )
            let (tenant, client) = try await env.tenant("Feed")
            defer { Task { await client.close() } }
            let tenantID = try #require(UUID(uuidString: tenant.id))
            // A watcher from the very start, and one that only wants license moves.
            let all = Watcher(client, VppV1.WatchChangesRequest(start: .afterCursor, cursor: 0))
            let licensesOnly = Watcher(client, VppV1.WatchChangesRequest(start: .now, kinds: [.license]))

            // R1, R7: a token (TOKEN created), its first sync (SYNC) and its app (COUNTS).
            let uploaded = try await env.upload(client, created.vppToken)
            let tokenID = try #require(uploaded.token?.id)
            _ = try await env.waitForJob(client, jobID: uploaded.syncJobId) { !$0.isActive }
            let assetID = try #require(try await StoryRPC.assetID(client, adamID: Self.app))

            // R13, R15: five devices, three licenses: an ASSIGNMENT, LICENSE moves, COUNTS, LICENSES_EXHAUSTED.
            let serials = (0..<5).map { String(format: "FEED%02d", $0) }
            let group = try await StoryRPC.deviceGroup(client, "feed devices", serials: serials)
            let assignment = try await StoryRPC.assign(client, assetID, group, type: .device)
            #expect(await Self.settled(env, client, tenantID: tenantID, assetID))
            // Installs reported (LICENSE: INSTALLED).
            try await Self.report(client, Array(serials.prefix(3)), .installed)
            // R8, R15: two more bought: the waiters are served (COUNTS, WAITERS_SERVED).
            try env.core.addPurchase(uId: created.uId, adamId: Self.app, count: 2)
            let sync = try await env.syncNow(client, tokenID)
            _ = try await env.waitForJob(client, jobID: sync.id) { !$0.isActive }
            #expect(await Self.settled(env, client, tenantID: tenantID, assetID))
            // R17: Uninstall; two devices report the app removed; the seats go back to Apple (RECLAIM_DONE).
            var update = VppV1.UpdateAssignmentRequest()
            update.assignmentId = assignment.id
            update.action = .uninstall
            _ = try await client.call(VppV1.AssignmentService.UpdateAssignment.self, update)
            try await Self.report(client, Array(serials.prefix(2)), .removed)
            #expect(await Self.settled(env, client, tenantID: tenantID, assetID))
            // Derived: the token expires in 10 days (TOKEN_EXPIRING 14 and... once, at the nearest threshold).
            try await env.server.storage.withTenant(tenantID) { transaction in
                try await transaction.query(
                    "UPDATE tokens SET expires_at = clock_timestamp() + interval '10 days' WHERE id = \(UUID(uuidString: tokenID)!)"
                )
            }
            #expect(try await env.server.storage.changeLog.warnExpiringTokens(tenantID: tenantID, now: Date()) == 1)
            #expect(try await env.server.storage.changeLog.warnExpiringTokens(tenantID: tenantID, now: Date()) == 0)
            // R4: another MDM takes the token; the next sync finds out (TOKEN_CLAIMED_ELSEWHERE).
            try env.core.setClientConfig(
                uId: created.uId,
                mdmInfo: MDMInfo(id: UUID().uuidString, name: "Rival MDM", metadata: "")
            )
            let stolen = try await env.syncNow(client, tokenID)
            _ = try await env.waitForJob(client, jobID: stolen.id) { !$0.isActive }

            let listed = try await Self.listAll(client)
            let head = try await Self.head(client)
            #expect(listed.last?.sequence == head)
            // Numbered 1, 2, 3... with no gap: the numbers are given at commit, in commit order.
            #expect(listed.map(\.sequence) == Array(1...head))
            let kinds = Set(listed.map(\.kind))
            let expected: Set<VppV1.ChangeKind> = [
                .token, .sync, .counts, .assignment, .license, .licensesExhausted, .waitersServed, .reclaimDone,
                .tokenExpiring, .tokenClaimedElsewhere,
            ]
            #expect(expected.subtracting(kinds).isEmpty, "missing kinds: \(expected.subtracting(kinds))")
            // The stream saw exactly what the list holds; the filtered one exactly the license moves after its start.
            #expect(await all.waitFor(head))
            #expect(all.changes == listed)
            #expect(
                await eventually {
                    licensesOnly.changes.last?.sequence == listed.last { $0.kind == .license }?.sequence
                }
            )
            #expect(licensesOnly.changes == listed.filter { $0.kind == .license })

            // The last word on each device and on the asset is what ListLicenses and GetLicenseCounts say now.
            var lastState: [String: VppV1.LicenseChange] = [:]
            for change in listed where change.kind == .license {
                let license = try #require(change.license)
                lastState[license.serialNumber] = license
            }
            let entries = try await StoryRPC.entries(client, assetID)
            for entry in entries {
                #expect(lastState[entry.serialNumber]?.state == entry.state, "\(entry.serialNumber)")
                #expect(lastState[entry.serialNumber]?.ended == false)
            }
            // Entries that ended are not listed any more.
            let endedSerials = Set(lastState.filter { $0.value.ended }.keys)
            #expect(endedSerials.isDisjoint(with: entries.map(\.serialNumber)))
            #expect(endedSerials == Set(serials.prefix(2)))
            let lastCounts = try #require(listed.last { $0.kind == .counts }?.counts?.counts)
            var counts = try await StoryRPC.counts(client, assetID)
            counts.appleAssigned = 0
            counts.appleAvailable = 0
            counts.appleRetired = 0
            #expect(lastCounts == counts)
            // Derived entries carry what happened.
            // Two waited and were served when two more were bought (the three served at once never waited).
            #expect(listed.filter { $0.kind == .waitersServed }.map(\.licenses).reduce(0, +) == 2)
            #expect(listed.filter { $0.kind == .reclaimDone }.map(\.licenses).reduce(0, +) == 2)
            #expect(listed.first { $0.kind == .tokenExpiring }?.token?.daysLeft == 14)
            #expect(listed.first { $0.kind == .tokenClaimedElsewhere }?.token?.state == .claimedElsewhere)
            #expect(listed.first { $0.kind == .licensesExhausted }?.counts?.counts?.waiting == 2)
            let finished = listed.filter { $0.kind == .sync }.compactMap(\.sync)
            #expect(finished.count >= 3)
            #expect(finished.first?.result == .succeeded)
            #expect(listed.first { $0.kind == .token }?.token?.created == true)
            #expect(listed.allSatisfy { $0.tokenId == tokenID })
            await all.stop()
            await licensesOnly.stop()
        }
    }

    @Test(
        "issue 19: a stream that drops and resumes from its last cursor, while changes keep coming, sees every change exactly once (randomized; the seed is printed)"
    )
    func resumeFromCursor() async throws {
        let seed =
            UInt64(ProcessInfo.processInfo.environment["VPP_TEST_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max)
        print("resumeFromCursor seed: \(seed) (VPP_TEST_SEED=\(seed) repeats it)")
        var random = SplitMix64(seed: seed)
        try await SyncEnvironment.run { env in
            let created = try env.core.createLocation(
                .init(
                    locationName: "Resume School",
                    assets: [.init(adamId: Self.app, productType: .app, totalCount: 4)]
                )
            )
            let (tenant, client) = try await env.tenant("Resume")
            defer { Task { await client.close() } }
            let tenantID = try #require(UUID(uuidString: tenant.id))
            let uploaded = try await env.upload(client, created.vppToken)
            _ = try await env.waitForJob(client, jobID: uploaded.syncJobId) { !$0.isActive }
            let assetID = try #require(try await StoryRPC.assetID(client, adamID: Self.app))
            let group = try await StoryRPC.deviceGroup(client, "resume devices", serials: ["R000"])
            _ = try await StoryRPC.assign(client, assetID, group, type: .device)

            // The consumer: it reconnects after a random number of batches, always from the last cursor it got.
            let seen = NIOLockedValueBox<[VppV1.Change]>([])
            let cursor = NIOLockedValueBox<UInt64>(0)
            let stop = NIOLockedValueBox(false)
            let reconnects = NIOLockedValueBox(0)
            let consumerSeed = random.next()
            let consumer = Task {
                var random = SplitMix64(seed: consumerSeed)
                while !stop.withLockedValue({ $0 }) {
                    let budget = Int(random.next() % 4) + 1
                    var batches = 0
                    let request = VppV1.WatchChangesRequest(
                        start: .afterCursor,
                        cursor: cursor.withLockedValue { $0 },
                        heartbeatSeconds: 1
                    )
                    do {
                        for try await batch in client.stream(VppV1.ChangeService.WatchChanges.self, request) {
                            seen.withLockedValue { $0 += batch.changes }
                            cursor.withLockedValue { $0 = batch.cursor }
                            batches += 1
                            if batches >= budget || stop.withLockedValue({ $0 }) { break }
                        }
                    } catch {
                        Issue.record("WatchChanges failed: \(error)")
                        return
                    }
                    reconnects.withLockedValue { $0 += 1 }
                }
            }
            // The producer: random directory and install changes, each moving licenses.
            var members = ["R000"]
            for step in 0..<40 {
                switch random.next() % 3 {
                case 0:
                    let serial = String(format: "R%03d", step + 1)
                    try await StoryRPC.upsertDevices(client, [(serial, nil)], enrollment: .automated)
                    var add = VppV1.GroupMembersRequest()
                    add.groupId = group
                    add.memberKeys = [serial]
                    _ = try await client.call(VppV1.DirectoryService.AddGroupMembers.self, add)
                    members.append(serial)
                case 1 where members.count > 1:
                    let serial = members.remove(at: Int(random.next() % UInt64(members.count)))
                    var remove = VppV1.GroupMembersRequest()
                    remove.groupId = group
                    remove.memberKeys = [serial]
                    _ = try await client.call(VppV1.DirectoryService.RemoveGroupMembers.self, remove)
                default:
                    let serial = members[Int(random.next() % UInt64(members.count))]
                    try await Self.report(client, [serial], random.next() % 2 == 0 ? .installed : .failed)
                }
            }
            #expect(await Self.settled(env, client, tenantID: tenantID, assetID))
            let head = try await Self.head(client)
            #expect(await eventually { cursor.withLockedValue { $0 } >= head })
            stop.withLockedValue { $0 = true }
            // A last change ends the consumer's current stream.
            try await Self.report(client, [members[0]], .installed)
            await consumer.value
            let listed = try await Self.listAll(client)
            let got = seen.withLockedValue { $0 }
            #expect(reconnects.withLockedValue { $0 } > 3, "the consumer never reconnected")
            // Exactly once, in order: the resumed streams together are the log.
            #expect(got.map(\.sequence) == Array(1...UInt64(got.count)), "seed \(seed)")
            #expect(Array(listed.prefix(got.count)) == got, "seed \(seed)")
            #expect(got.count >= Int(head), "seed \(seed)")
        }
    }

    @Test("issue 19, C3: a tenant's feed holds only its own changes; bad cursors and kinds get clear statuses")
    func isolationAndHostileInput() async throws {
        try await SyncEnvironment.run { env in
            let created = try env.core.createLocation(
                .init(locationName: "Own School", assets: [.init(adamId: Self.app, productType: .app, totalCount: 1)])
            )
            let (_, client) = try await env.tenant("Own")
            let (otherTenant, other) = try await env.tenant("Other")
            defer {
                Task {
                    await client.close()
                    await other.close()
                }
            }
            let uploaded = try await env.upload(client, created.vppToken)
            _ = try await env.waitForJob(client, jobID: uploaded.syncJobId) { !$0.isActive }
            #expect(try await Self.listAll(client).isEmpty == false)
            // The other tenant's feed is its own: empty.
            #expect(try await Self.listAll(other).isEmpty)
            #expect(try await Self.head(other) == 0)

            let head = try await Self.head(client)
            await expectStatus(.invalidArgument) {
                _ = try await client.call(
                    VppV1.ChangeService.ListChanges.self,
                    VppV1.ListChangesRequest(cursor: head + 1)
                )
            }
            await expectStatus(.invalidArgument) {
                _ = try await client.call(
                    VppV1.ChangeService.ListChanges.self,
                    VppV1.ListChangesRequest(kinds: [.unrecognized(999)])
                )
            }
            await expectStatus(.invalidArgument) {
                _ = try await client.call(
                    VppV1.ChangeService.ListChanges.self,
                    VppV1.ListChangesRequest(start: .now, cursor: 3)
                )
            }
            await expectStatus(.invalidArgument) {
                _ = try await client.call(
                    VppV1.ChangeService.ListChanges.self,
                    VppV1.ListChangesRequest(pageSize: 5000)
                )
            }
            await expectStatus(.invalidArgument) {
                for try await _ in client.stream(
                    VppV1.ChangeService.WatchChanges.self,
                    VppV1.WatchChangesRequest(heartbeatSeconds: 100_000)
                ) {}
            }
            // The operator's key has no feed of its own.
            let operatorClient = env.server.operatorClient()
            await expectStatus(.permissionDenied) {
                _ = try await operatorClient.call(VppV1.ChangeService.ListChanges.self, VppV1.ListChangesRequest())
            }
            await operatorClient.close()
            _ = otherTenant
        }
    }

    @Test(
        "issue 19: a cursor older than the retention gets FAILED_PRECONDITION naming the oldest cursor still held; pruning never skips silently"
    )
    func expiredCursor() async throws {
        try await SyncEnvironment.run { env in
            let created = try env.core.createLocation(
                .init(
                    locationName: "Pruned School",
                    assets: [.init(adamId: Self.app, productType: .app, totalCount: 1)]
                )
            )
            let (tenant, client) = try await env.tenant("Pruned")
            defer { Task { await client.close() } }
            let tenantID = try #require(UUID(uuidString: tenant.id))
            let uploaded = try await env.upload(client, created.vppToken)
            _ = try await env.waitForJob(client, jobID: uploaded.syncJobId) { !$0.isActive }
            let before = try await Self.listAll(client)
            let head = try #require(before.last?.sequence)
            // Everything so far is past the retention.
            let pruned = try await env.server.storage.changeLog.prune(
                tenantID: tenantID,
                olderThan: Date().addingTimeInterval(1)
            )
            #expect(pruned == before.count)
            do {
                _ = try await client.call(VppV1.ChangeService.ListChanges.self, VppV1.ListChangesRequest(cursor: 0))
                Issue.record("an expired cursor was accepted")
            } catch let error as RPCError {
                #expect(error.status.code == .failedPrecondition)
                let detail = try #require(error.status.details.first)
                #expect(detail.reason == "CHANGE_CURSOR_EXPIRED")
                #expect(detail.metadata.first { $0.key == "oldest_cursor" }?.value == "\(head)")
            }
            await expectStatus(.failedPrecondition) {
                for try await _ in client.stream(VppV1.ChangeService.WatchChanges.self, VppV1.WatchChangesRequest()) {}
            }
            // From the oldest still held (or the cursor it names) reads on without error.
            let oldest = try await client.call(
                VppV1.ChangeService.ListChanges.self,
                VppV1.ListChangesRequest(start: .oldest)
            )
            #expect(oldest.changes.isEmpty)
            #expect(oldest.cursor == head)
            let resumed = try await client.call(
                VppV1.ChangeService.ListChanges.self,
                VppV1.ListChangesRequest(cursor: head)
            )
            #expect(resumed.cursor == head)
        }
    }
}

/// Runs `body` and expects it to fail with `code`.
func expectStatus(
    _ code: RpcV1.StatusCode,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("expected \(code), the call succeeded", sourceLocation: sourceLocation)
    } catch let error as RPCError {
        #expect(error.status.code == code, "\(error.status.message)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
}
