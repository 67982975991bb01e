import AppleVPP
import AppleVPPSimulator
import Foundation
import Testing
import VPPClient
import VPPProto
import VPPStorage
import VPPSync
import VPPTesting
import VPPWire

/// A tenant with one synced token whose library is `assets`, and helpers to fill its directory.
struct LedgerFixture {
    let env: SyncEnvironment
    let tenantID: UUID
    let client: VPPClient
    let uId: String
    let tokenID: String

    static func make(
        _ env: SyncEnvironment,
        assets: [SimulatorFixture.Asset],
        inlineSync: Bool = false,
        configure: (inout VppV1.CreateTenantRequest) -> Void = { _ in }
    ) async throws -> LedgerFixture {
        let created = try env.core.createLocation(.init(locationName: "Ledger School", assets: assets))
        let (tenant, client) = try await env.tenant("Ledger", configure: configure)
        let uploaded = try await env.upload(client, created.vppToken)
        if inlineSync {
            // No worker runs in this test: run the first sync here, as a worker would.
            let job = try #require(
                try await env.sync.queue.claim(owner: "inline", kinds: [SyncJobs.kind], limit: 1, lease: .seconds(60))
                    .first
            )
            _ = try await env.sync.runner.run(
                tenantID: try #require(UUID(uuidString: tenant.id)),
                tokenID: try #require(UUID(uuidString: uploaded.token?.id ?? "")),
                jobID: job.id,
                full: true
            ) { _, _, _ in }
            _ = try await env.sync.queue.succeed(job.id, owner: "inline", result: "{}")
        } else {
            _ = try await env.waitForJob(client, jobID: uploaded.syncJobId) { !$0.isActive }
        }
        return LedgerFixture(
            env: env,
            tenantID: try #require(UUID(uuidString: tenant.id)),
            client: client,
            uId: created.uId,
            tokenID: try #require(uploaded.token?.id)
        )
    }

    func assetID(_ adamID: String) async throws -> String {
        var request = VppV1.ListAssetsRequest()
        request.query = adamID
        let apps = try await client.call(VppV1.CatalogService.ListApps.self, request).assets
        let books = try await client.call(VppV1.CatalogService.ListBooks.self, request).assets
        return try #require((apps + books).first { $0.adamId == adamID }).id
    }

    /// Devices and a device group holding them, written as the directory would (the ledger follows on `changed()`).
    @discardableResult
    func deviceGroup(_ name: String, serials: [String], enrollment: String = "automated", booksApp: Bool = true)
        async throws -> UUID
    {
        let groupID = UUID()
        try await env.server.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                INSERT INTO devices (id, serial_number, enrollment, books_app_present)
                SELECT gen_random_uuid(), s, \(enrollment), \(booksApp) FROM unnest(\(serials)::text[]) AS s
                ON CONFLICT (serial_number) DO NOTHING
                """
            )
            try await transaction.query(
                "INSERT INTO groups (id, external_id, name, kind) VALUES (\(groupID), \(name), \(name), 'device')"
            )
            try await transaction.query(
                """
                INSERT INTO group_devices (group_id, device_id)
                SELECT \(groupID), id FROM devices WHERE serial_number = ANY(\(serials)::text[])
                """
            )
        }
        return groupID
    }

    /// Users (each with one user-affiliated device `D-<id>`) and a user group holding them.
    @discardableResult
    func userGroup(_ name: String, users: [String], appStoreDisabled: Set<String> = []) async throws -> UUID {
        let groupID = UUID()
        try await env.server.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                INSERT INTO users (id, external_id, email, app_store_disabled)
                SELECT gen_random_uuid(), u, u || '@example.com', u = ANY(\(Array(appStoreDisabled))::text[])
                FROM unnest(\(users)::text[]) AS u
                ON CONFLICT (external_id) DO NOTHING
                """
            )
            try await transaction.query(
                """
                INSERT INTO devices (id, serial_number, owner_user_id, enrollment)
                SELECT gen_random_uuid(), 'D-' || external_id, id, 'user_affiliated' FROM users
                WHERE external_id = ANY(\(users)::text[])
                ON CONFLICT (serial_number) DO NOTHING
                """
            )
            try await transaction.query(
                "INSERT INTO groups (id, external_id, name, kind) VALUES (\(groupID), \(name), \(name), 'user')"
            )
            try await transaction.query(
                "INSERT INTO group_users (group_id, user_id) SELECT \(groupID), id FROM users WHERE external_id = ANY(\(users)::text[])"
            )
        }
        return groupID
    }

    func removeFromGroup(_ groupID: UUID, serials: [String]) async throws {
        try await env.server.storage.withTenant(tenantID) { transaction in
            try await transaction.query(
                """
                DELETE FROM group_devices WHERE group_id = \(groupID)
                  AND device_id IN (SELECT id FROM devices WHERE serial_number = ANY(\(serials)::text[]))
                """
            )
        }
        await self.changed()
    }

    /// What the directory service does after a change: the ledger follows.
    func changed() async {
        await LedgerDirectoryObserver(ledger: env.sync.ledger, syncs: env.sync.syncs, logger: .init(label: "test"))
            .directoryChanged(tenantID: tenantID)
    }

    func assign(
        _ assetID: String,
        _ groupID: UUID,
        action: VppV1.AssignmentAction = .required,
        type: VppV1.LicenseType = .device
    )
        async throws -> VppV1.Assignment
    {
        var request = VppV1.CreateAssignmentRequest()
        request.assetId = assetID
        request.groupId = groupID.uuidString.lowercased()
        request.action = action
        request.licenseType = type
        return try await client.call(VppV1.AssignmentService.CreateAssignment.self, request)
    }

    func usage(_ assetID: String) async throws -> VppV1.LicenseUsage {
        var request = VppV1.GetLicenseUsageRequest()
        request.assetId = assetID
        return try await client.call(VppV1.LicenseService.GetLicenseUsage.self, request)
    }

    /// Waits until every change reached Apple (nothing reserved or being released here).
    func settled(_ assetID: String, timeout: Duration = .seconds(30)) async throws -> VppV1.LicenseUsage {
        let deadline = ContinuousClock.now + timeout
        while true {
            let usage = try await self.usage(assetID)
            let releasing = try await env.server.storage.withTenant(tenantID) { transaction in
                try await transaction.query("SELECT count(*)::bigint FROM apple_outbox").single().decode(
                    Int.self,
                    at: 0
                )
            }
            if usage.counts?.reserved == 0 && releasing == 0 { return usage }
            guard ContinuousClock.now < deadline else {
                let jobs = try await env.server.storage.pool.query(
                    "SELECT kind, state, attempt, error FROM vpp_control.jobs WHERE tenant_id = \(tenantID) ORDER BY queued_at"
                ).map {
                    "\(try $0.decode(String.self, at: 0)) \(try $0.decode(String.self, at: 1)) \(try $0.decode(Int.self, at: 2)) \(try $0.decode(String.self, at: 3))"
                }
                Issue.record("the ledger did not settle: \(usage); outbox \(releasing); jobs \(jobs)")
                return usage
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func appleAssigned(_ adamID: String) -> Int {
        env.core.assetCounts(uId: uId)["\(adamID)/STDQ"]?.assigned ?? -1
    }
}

@Suite("License ledger: never more than bought, waiters served in order (R13-R23)", .timeLimit(.minutes(5)))
struct LicenseLedgerTests {
    static let app = "408709785"
    static let book = "1000000001"

    @Test(
        "R15, R16: 500 targets and 100 licenses: 100 granted, 400 wait; 10 freed go to 10 waiters; 50 bought go to 50 more"
    )
    func fiveHundredTargets() async throws {
        try await SyncEnvironment.run { env in
            let fixture = try await LedgerFixture.make(
                env,
                assets: [.init(adamId: Self.app, productType: .app, totalCount: 100)]
            )
            defer { Task { await fixture.client.close() } }
            let assetID = try await fixture.assetID(Self.app)
            let serials = (0..<500).map { String(format: "LAB%04d", $0) }
            let group = try await fixture.deviceGroup("lab", serials: serials)

            let assignment = try await fixture.assign(assetID, group)
            #expect(assignment.targets == 500)
            #expect(assignment.granted == 100)
            #expect(assignment.waiting == 400)
            var usage = try await fixture.settled(assetID)
            #expect(usage.waitingForLicense == 400)
            #expect(usage.counts?.available == 0)
            #expect(fixture.appleAssigned(Self.app) == 100)

            // The waiting line is stable: the first ten waiters are the next ten serial numbers.
            var list = VppV1.ListLicensesRequest()
            list.assetId = assetID
            list.state = .waitingForLicense
            list.page = VppV1.PageRequest()
            list.page?.pageSize = 10
            let firstWaiters = try await fixture.client.call(VppV1.LicenseService.ListLicenses.self, list).entries
            #expect(firstWaiters.map(\.serialNumber) == Array(serials[100..<110]))
            #expect(firstWaiters.map(\.queuePosition) == Array(1...10).map(UInt32.init))

            // Free ten seats: ten granted devices leave the group; exactly the next ten waiters get them.
            try await fixture.removeFromGroup(group, serials: Array(serials[0..<10]))
            usage = try await fixture.settled(assetID)
            #expect(usage.waitingForLicense == 390)
            #expect(fixture.appleAssigned(Self.app) == 100)
            let holders = try await fixture.client.call(
                VppV1.LicenseService.ListLicenses.self,
                {
                    var r = list
                    r.state = .unspecified
                    r.page?.pageSize = 1000
                    return r
                }()
            ).entries.filter { $0.state != .waitingForLicense }.map(\.serialNumber)
            #expect(Set(holders) == Set(serials[10..<110]))

            // Buy fifty more at Apple: the next sync hands them to the next fifty waiters.
            try env.core.addPurchase(uId: fixture.uId, adamId: Self.app, count: 50)
            let job = try await env.syncNow(fixture.client, fixture.tokenID, full: true)
            _ = try await env.waitForJob(fixture.client, jobID: job.id) { !$0.isActive }
            usage = try await fixture.settled(assetID)
            #expect(usage.waitingForLicense == 340)
            #expect(fixture.appleAssigned(Self.app) == 150)
        }
    }

    @Test("Changes reach Apple in batches within the service-config limits (1,000 serial numbers per request)")
    func batches() async throws {
        try await SyncEnvironment.run { env in
            let fixture = try await LedgerFixture.make(
                env,
                assets: [.init(adamId: Self.app, productType: .app, totalCount: 2500)]
            )
            defer { Task { await fixture.client.close() } }
            let assetID = try await fixture.assetID(Self.app)
            let group = try await fixture.deviceGroup("all", serials: (0..<2500).map { "B\($0)" })
            env.core.clearRecordedRequests()
            let assignment = try await fixture.assign(assetID, group)
            #expect(assignment.granted == 2500)
            _ = try await fixture.settled(assetID)
            #expect(fixture.appleAssigned(Self.app) == 2500)
            // Every request passed the simulator's limit checks (it answers 9702 above 1,000 serials): three batches.
            let associations = env.core.recordedRequests().filter { $0.path.hasSuffix("/assets/associate") }
            #expect(associations.count == 3)
            #expect(associations.allSatisfy { $0.status == 200 })
        }
    }

    @Test("R15: concurrent assignments from many connections never take more seats than were bought")
    func concurrentAssignments() async throws {
        try await SyncEnvironment.run { env in
            let fixture = try await LedgerFixture.make(
                env,
                assets: [.init(adamId: Self.app, productType: .app, totalCount: 37)]
            )
            defer { Task { await fixture.client.close() } }
            let assetID = try await fixture.assetID(Self.app)
            var groups: [UUID] = []
            for index in 0..<12 {
                groups.append(try await fixture.deviceGroup("g\(index)", serials: (0..<10).map { "G\(index)-\($0)" }))
            }
            // Twelve connections assign at once, each to its own group of ten: 120 targets for 37 seats.
            let secret = try await env.server.storage.apiKeys.create(
                kind: .tenant,
                tenantID: fixture.tenantID,
                name: "concurrent"
            ).secret
            try await withThrowingTaskGroup(of: Void.self) { group in
                for groupID in groups {
                    group.addTask {
                        let client = env.server.client(key: secret)
                        defer { Task { await client.close() } }
                        var request = VppV1.CreateAssignmentRequest()
                        request.assetId = assetID
                        request.groupId = groupID.uuidString.lowercased()
                        request.action = .required
                        request.licenseType = .device
                        _ = try await client.call(VppV1.AssignmentService.CreateAssignment.self, request)
                    }
                }
                try await group.waitForAll()
            }
            let usage = try await fixture.settled(assetID)
            #expect(usage.waitingForLicense == 120 - 37)
            #expect(fixture.appleAssigned(Self.app) == 37)
            let held = try await env.server.storage.withTenant(fixture.tenantID) { transaction in
                try await transaction.query(
                    "SELECT count(*)::bigint FROM licenses WHERE state IN ('reserved', 'granted')"
                )
                .single().decode(Int.self, at: 0)
            }
            #expect(held == 37)
        }
    }

    @Test("A push that dies after Apple accepted its request loses nothing and assigns nothing twice")
    func crashBetweenLedgerAndApple() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            let fixture = try await LedgerFixture.make(
                env,
                assets: [.init(adamId: Self.app, productType: .app, totalCount: 100)],
                inlineSync: true
            )
            defer { Task { await fixture.client.close() } }
            let assetID = try await fixture.assetID(Self.app)
            let serials = (0..<120).map { "CRASH\($0)" }
            let group = try await fixture.deviceGroup("crash", serials: serials)
            _ = try await fixture.assign(assetID, group)
            // The ledger holds 100 reservations and their outbox rows; no worker runs.
            let rows = try await env.sync.ledger.outbox(
                tenantID: fixture.tenantID,
                tokenID: UUID(uuidString: fixture.tokenID)!,
                limit: 1000
            )
            #expect(rows.filter { $0.operation == .associate }.count == 100)

            // "The process dies" after Apple accepted the first 60 but before anything was recorded here.
            let token = try ServiceToken(
                fileContents: try await env.sync.tokens.credential(
                    tenantID: fixture.tenantID,
                    UUID(uuidString: fixture.tokenID)!
                ).credential,
                now: Date()
            )
            let session = env.sync.apple.session(token: token)
            let event = try await session.associate(
                ManageAssetsRequest(
                    assets: [AssetReference(adamId: Self.app, pricingParam: .standard)],
                    serialNumbers: rows.prefix(60).map(\.serialNumber)
                )
            )
            _ = try await session.waitForEvent(event.eventId, pollInterval: .milliseconds(20))
            #expect(fixture.appleAssigned(Self.app) == 60)

            // After the restart, the push sends the whole outbox: Apple ends with exactly 100, the ledger agrees.
            let applied = try await env.sync.push.run(
                tenantID: fixture.tenantID,
                tokenID: UUID(uuidString: fixture.tokenID)!
            )
            #expect(applied.applied == 100)
            let usage = try await fixture.settled(assetID)
            #expect(fixture.appleAssigned(Self.app) == 100)
            #expect(usage.counts?.reserved == 0)
            #expect(usage.waitingForLicense == 20)
            let granted = try await env.server.storage.withTenant(fixture.tenantID) { transaction in
                try await transaction.query("SELECT count(*)::bigint FROM licenses WHERE state = 'granted'").single()
                    .decode(Int.self, at: 0)
            }
            #expect(granted == 100)
        }
    }

    @Test("R13: books only as Required; R14: device groups only where allowed")
    func assignmentRules() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            let fixture = try await LedgerFixture.make(
                env,
                assets: [
                    .init(adamId: Self.app, productType: .app, totalCount: 5),
                    .init(adamId: Self.book, productType: .book, totalCount: 5),
                ],
                inlineSync: true
            ) { request in
                // Created in 2015, without the feature (R14).
                request.createdAt = {
                    var t = VppV1.Timestamp()
                    t.seconds = 1_420_070_400
                    return t
                }()
            }
            defer { Task { await fixture.client.close() } }
            let users = try await fixture.userGroup("readers", users: ["ann", "bob"])
            let lab = try await fixture.deviceGroup("lab", serials: ["L1"])
            let bookID = try await fixture.assetID(Self.book)
            let appID = try await fixture.assetID(Self.app)

            let available = await rpcError {
                _ = try await fixture.assign(bookID, users, action: .available, type: .user)
            }
            #expect(available?.code == .invalidArgument)
            #expect(available?.message.contains("R13") == true)
            _ = try await fixture.assign(bookID, users, action: .required, type: .user)

            let device = await rpcError { _ = try await fixture.assign(appID, lab) }
            #expect(device?.code == .failedPrecondition)
            #expect(device?.reason == "DEVICE_GROUPS_NOT_ALLOWED")
            #expect(device?.message.contains("R14") == true)

            let twice = await rpcError { _ = try await fixture.assign(bookID, users, action: .required, type: .user) }
            #expect(twice?.code == .alreadyExists)
        }
    }

    @Test("R17: Uninstall frees a license only once the device reports the app removed")
    func uninstall() async throws {
        try await SyncEnvironment.run { env in
            let fixture = try await LedgerFixture.make(
                env,
                assets: [.init(adamId: Self.app, productType: .app, totalCount: 2)]
            )
            defer { Task { await fixture.client.close() } }
            let assetID = try await fixture.assetID(Self.app)
            let group = try await fixture.deviceGroup("carts", serials: ["C1", "C2", "C3"])
            let assignment = try await fixture.assign(assetID, group)
            _ = try await fixture.settled(assetID)

            var update = VppV1.UpdateAssignmentRequest()
            update.assignmentId = assignment.id
            update.action = .uninstall
            _ = try await fixture.client.call(VppV1.AssignmentService.UpdateAssignment.self, update)
            var usage = try await fixture.settled(assetID)
            #expect(usage.removing == 2)
            #expect(fixture.appleAssigned(Self.app) == 2)  // still held until removal is reported

            var report = VppV1.ReportInstallResultsRequest()
            var removed = VppV1.InstallReport()
            removed.serialNumber = "C1"
            removed.adamId = Self.app
            removed.outcome = .removed
            report.reports = [removed]
            let answer = try await fixture.client.call(VppV1.LicenseService.ReportInstallResults.self, report)
            #expect(answer.applied == 1)
            #expect(answer.freedLicenses == 1)
            usage = try await fixture.settled(assetID)
            #expect(usage.removing == 1)
            #expect(fixture.appleAssigned(Self.app) == 1)
        }
    }

    @Test("R18, R20, R22, R23: device status explains what applies and why")
    func statuses() async throws {
        try await SyncEnvironment.run { env in
            let fixture = try await LedgerFixture.make(
                env,
                assets: [
                    .init(adamId: Self.app, productType: .app, totalCount: 10),
                    .init(adamId: Self.book, productType: .book, totalCount: 10),
                ]
            )
            defer { Task { await fixture.client.close() } }
            let appID = try await fixture.assetID(Self.app)
            // R18: a DEP device in a user's name... has no user affinity: a user-group device assignment skips it.
            let staff = try await fixture.userGroup("staff", users: ["carol", "dave"], appStoreDisabled: ["dave"])
            try await env.server.storage.withTenant(fixture.tenantID) { transaction in
                try await transaction.query(
                    "INSERT INTO devices (id, serial_number, owner_user_id, enrollment, books_app_present) SELECT gen_random_uuid(), 'DEP-1', id, 'automated', false FROM users WHERE external_id = 'carol'"
                )
            }
            let deviceAssignment = try await fixture.assign(appID, staff, type: .device)
            #expect(deviceAssignment.targets == 2)  // D-carol and D-dave, not DEP-1
            _ = try await fixture.settled(appID)

            var deviceStatus = VppV1.GetDeviceStatusRequest()
            deviceStatus.serialNumber = "DEP-1"
            let dep = try await fixture.client.call(VppV1.LicenseService.GetDeviceStatus.self, deviceStatus)
            #expect(dep.entries.isEmpty)
            #expect(dep.notes.contains { $0.contains("R18") })
            #expect(dep.notes.contains { $0.contains("R22") })

            // R20: user licensing for a user whose App Store app is disabled cannot work, and says so.
            let bookID = try await fixture.assetID(Self.book)
            _ = try await fixture.assign(bookID, staff, type: .user)
            _ = try await fixture.settled(bookID)
            var userStatus = VppV1.GetUserStatusRequest()
            userStatus.externalId = "dave"
            let dave = try await fixture.client.call(VppV1.LicenseService.GetUserStatus.self, userStatus)
            let daveBook = try #require(dave.entries.first { $0.assetId == bookID })
            #expect(daveBook.state == .notApplicable)
            #expect(daveBook.reason.contains("R20"))
            #expect(dave.notes.contains { $0.contains("R20") })
            // Carol was registered at Apple and invited; her install waits for her to accept (R20).
            userStatus.externalId = "carol"
            let carol = try await fixture.client.call(VppV1.LicenseService.GetUserStatus.self, userStatus)
            #expect(carol.entries.first { $0.assetId == bookID }?.state == .waitingForInvitation)
            var getUser = VppV1.GetEntryRequest()
            getUser.by = .key("carol")
            #expect(try await fixture.client.call(VppV1.DirectoryService.GetUser.self, getUser).vppState == .invited)
            getUser.by = .key("dave")
            #expect(
                try await fixture.client.call(VppV1.DirectoryService.GetUser.self, getUser).vppState == .notRegistered
            )

            // R23: the device reports installs; the status shows them.
            var report = VppV1.ReportInstallResultsRequest()
            var installed = VppV1.InstallReport()
            installed.serialNumber = "D-carol"
            installed.adamId = Self.app
            installed.outcome = .installed
            var failed = installed
            failed.serialNumber = "D-dave"
            failed.outcome = .failed
            failed.reason = "not enough storage"
            report.reports = [installed, failed]
            _ = try await fixture.client.call(VppV1.LicenseService.ReportInstallResults.self, report)
            deviceStatus.serialNumber = "D-dave"
            let daveDevice = try await fixture.client.call(VppV1.LicenseService.GetDeviceStatus.self, deviceStatus)
            let entry = try #require(daveDevice.entries.first { $0.assetId == appID })
            #expect(entry.state == .failed)
            #expect(entry.reason == "The device reported the install failed: not enough storage")
            let usage = try await fixture.usage(appID)
            #expect(usage.installed == 1)
            #expect(usage.failed == 1)
        }
    }

    @Test("R19: a user with more than five devices is told one Apple ID covers at most five")
    func fiveDevices() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            let fixture = try await LedgerFixture.make(
                env,
                assets: [.init(adamId: Self.app, productType: .app, totalCount: 1)],
                inlineSync: true
            )
            defer { Task { await fixture.client.close() } }
            try await fixture.userGroup("g", users: ["gina", "hal"])
            try await env.server.storage.withTenant(fixture.tenantID) { transaction in
                try await transaction.query(
                    """
                    INSERT INTO devices (id, serial_number, owner_user_id, enrollment)
                    SELECT gen_random_uuid(), 'GINA-' || n, (SELECT id FROM users WHERE external_id = 'gina'), 'user_affiliated'
                    FROM generate_series(1, 5) AS n
                    """
                )
            }
            var request = VppV1.GetUserStatusRequest()
            request.externalId = "gina"
            let gina = try await fixture.client.call(VppV1.LicenseService.GetUserStatus.self, request)
            #expect(gina.notes.contains { $0.contains("R19") && $0.contains("6 devices") })
            request.externalId = "hal"
            let hal = try await fixture.client.call(VppV1.LicenseService.GetUserStatus.self, request)
            #expect(!hal.notes.contains { $0.contains("R19") })
        }
    }

    @Test("R21: an Available app is handed out when a user asks, if a license is left")
    func available() async throws {
        try await SyncEnvironment.run { env in
            let fixture = try await LedgerFixture.make(
                env,
                assets: [.init(adamId: Self.app, productType: .app, totalCount: 1)]
            )
            defer { Task { await fixture.client.close() } }
            let appID = try await fixture.assetID(Self.app)
            let group = try await fixture.userGroup("class", users: ["eve", "frank"])
            let assignment = try await fixture.assign(appID, group, action: .available, type: .user)
            #expect(assignment.granted == 0)
            var request = VppV1.RequestAppRequest()
            request.assetId = appID
            request.userExternalId = "eve"
            let eve = try await fixture.client.call(VppV1.LicenseService.RequestApp.self, request)
            #expect(eve.state == .pending || eve.state == .waitingForInvitation)
            request.userExternalId = "frank"
            let frank = try await fixture.client.call(VppV1.LicenseService.RequestApp.self, request)
            #expect(frank.state == .waitingForLicense)
            #expect(frank.queuePosition == 1)
            request.userExternalId = "nobody"
            #expect(
                await rpcError { _ = try await fixture.client.call(VppV1.LicenseService.RequestApp.self, request) }?
                    .code == .notFound
            )
        }
    }
}

@Suite("Licenses follow the directory over RPC", .timeLimit(.minutes(3)))
struct LedgerFollowsDirectoryTests {
    @Test("Membership changes made through DirectoryService move licenses without the tenant asking")
    func membershipFlowsIntoLicenses() async throws {
        try await SyncEnvironment.run { env in
            let fixture = try await LedgerFixture.make(
                env,
                assets: [.init(adamId: LicenseLedgerTests.app, productType: .app, totalCount: 3)]
            )
            defer { Task { await fixture.client.close() } }
            let client = fixture.client
            var devices = VppV1.UpsertDevicesRequest()
            devices.devices = (0..<5).map { index in
                var device = VppV1.DeviceInput()
                device.serialNumber = "RPC\(index)"
                device.enrollment = .automated
                device.booksAppPresent = true
                return device
            }
            let upserted = try await client.call(VppV1.DirectoryService.UpsertDevices.self, devices)
            #expect(upserted.created == 5)
            var create = VppV1.CreateGroupRequest()
            create.externalId = "ipads"
            create.name = "iPads"
            create.kind = .device
            let group = try await client.call(VppV1.DirectoryService.CreateGroup.self, create)
            var members = VppV1.GroupMembersRequest()
            members.groupId = group.id
            members.memberKeys = ["RPC0", "RPC1"]
            _ = try await client.call(VppV1.DirectoryService.AddGroupMembers.self, members)

            let assetID = try await fixture.assetID(LicenseLedgerTests.app)
            let assignment = try await fixture.assign(assetID, try #require(UUID(uuidString: group.id)))
            #expect(assignment.granted == 2)

            // Three more join: one seat is left, so one gets it and two wait.
            members.memberKeys = ["RPC2", "RPC3", "RPC4"]
            _ = try await client.call(VppV1.DirectoryService.AddGroupMembers.self, members)
            var usage = try await fixture.settled(assetID)
            #expect(usage.waitingForLicense == 2)
            #expect(fixture.appleAssigned(LicenseLedgerTests.app) == 3)

            // Two holders leave: their seats go back to Apple and on to the two waiters.
            members.memberKeys = ["RPC0", "RPC1"]
            _ = try await client.call(VppV1.DirectoryService.RemoveGroupMembers.self, members)
            usage = try await fixture.settled(assetID)
            #expect(usage.waitingForLicense == 0)
            #expect(fixture.appleAssigned(LicenseLedgerTests.app) == 3)
            var status = VppV1.GetDeviceStatusRequest()
            status.serialNumber = "RPC0"
            #expect(try await client.call(VppV1.LicenseService.GetDeviceStatus.self, status).entries.isEmpty)
            status.serialNumber = "RPC4"
            #expect(
                try await client.call(VppV1.LicenseService.GetDeviceStatus.self, status).entries.first?.state
                    == .pending
            )
        }
    }
}

extension LedgerFollowsDirectoryTests {
    @Test("A device deleted from the directory gives its seat back at Apple, and a waiter gets it")
    func deletedDeviceReleasesItsSeat() async throws {
        try await SyncEnvironment.run { env in
            let fixture = try await LedgerFixture.make(
                env,
                assets: [.init(adamId: LicenseLedgerTests.app, productType: .app, totalCount: 2)]
            )
            defer { Task { await fixture.client.close() } }
            let assetID = try await fixture.assetID(LicenseLedgerTests.app)
            let group = try await fixture.deviceGroup("carts", serials: ["DEL0", "DEL1", "DEL2"])
            _ = try await fixture.assign(assetID, group)
            var usage = try await fixture.settled(assetID)
            #expect(usage.waitingForLicense == 1)
            #expect(fixture.appleAssigned(LicenseLedgerTests.app) == 2)

            var delete = VppV1.DeleteEntriesRequest()
            delete.keys = ["DEL0"]
            let deleted = try await fixture.client.call(VppV1.DirectoryService.DeleteDevices.self, delete)
            #expect(deleted.deleted == 1)
            usage = try await fixture.settled(assetID)
            #expect(usage.waitingForLicense == 0)
            #expect(fixture.appleAssigned(LicenseLedgerTests.app) == 2)
            let apple = try await env.sync.apple.session(
                token: try ServiceToken(
                    fileContents: try await env.sync.tokens.credential(
                        tenantID: fixture.tenantID,
                        UUID(uuidString: fixture.tokenID)!
                    ).credential,
                    now: Date()
                )
            ).allAssignments()
            #expect(Set(apple.items.compactMap(\.serialNumber)) == ["DEL1", "DEL2"])
        }
    }
}
