import AppleVPP
import AppleVPPSimulator
import Foundation
import Logging
import Testing
import VPPClient
import VPPClock
import VPPJobs
import VPPProto
import VPPStorage
import VPPSync
import VPPTestSupport
import VPPTesting
import VPPWire

@Suite("Sync jobs: schedule, resumption, own and foreign users", .timeLimit(.minutes(3)))
struct SyncQueueTests {
    @Test("R7: tokens sync on schedule (here every 2 s), and 'sync now' joins a queued sync")
    func schedule() async throws {
        try await SyncEnvironment.run(scheduleInterval: .seconds(2), schedulerTick: .milliseconds(200)) { env in
            let location = try env.newLocation()
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }
            let uploaded = try await env.upload(client, location.file)
            let tokenID = try #require(uploaded.token?.id)
            _ = try await env.waitForJob(client, jobID: uploaded.syncJobId) { !$0.isActive }

            var request = VppV1.ListSyncJobsRequest()
            request.tokenId = tokenID
            let deadline = ContinuousClock.now + .seconds(20)
            var scheduled: [VppV1.SyncJob] = []
            while scheduled.count < 2, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                scheduled = try await client.call(VppV1.SyncService.ListSyncJobs.self, request).jobs
                    .filter { $0.trigger == .schedule && $0.state == .succeeded }
            }
            #expect(scheduled.count >= 2)
            // Scheduled syncs after the first full one read only changes.
            #expect(scheduled.contains { !$0.fullSync })
        }
    }

    @Test("R7: the scheduler looks for due tokens at start and then once a tick of its clock, not in between")
    func schedulerTicksOnItsClock() async throws {
        // No scheduler of the test server's own (schedulerTick nil): only the one under test takes due tokens.
        try await SyncEnvironment.run(workers: 0, schedulerTick: nil) { env in
            let location = try env.newLocation()
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }
            let uploaded = try await env.upload(client, location.file)
            let tokenID = try #require(uploaded.token?.id)
            let pool = env.server.storage.pool
            func makeDue() async throws {
                try await pool.query(
                    "UPDATE vpp_control.token_registry SET next_sync_at = now() - interval '1 hour' WHERE token_id = \(tokenID)"
                )
            }
            func isDue() async throws -> Bool {
                try await pool.query(
                    "SELECT next_sync_at <= now() FROM vpp_control.token_registry WHERE token_id = \(tokenID)"
                ).single().decode(Bool.self, at: 0)
            }
            let clock = ManualClock()
            let scheduler = SyncScheduler(
                storage: env.server.storage,
                queue: env.sync.queue,
                interval: .seconds(3600),
                tick: .seconds(30),
                clock: InstantClock(clock),
                logger: Logger(label: "test")
            )
            try await makeDue()
            let running = Task { try await scheduler.run() }
            defer { running.cancel() }
            // At start: the due token is taken (its next time moves an interval on), then the scheduler sleeps.
            #expect(await eventually { try await !isDue() })
            try await clock.waitForSleepers(1)
            try await makeDue()
            clock.advance(by: .seconds(29))
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await isDue(), "the scheduler looked before its tick")
            clock.advance(by: .seconds(1))
            #expect(await eventually { try await !isDue() })
        }
    }

    @Test("A sync requested while one is queued joins it")
    func joins() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            let location = try env.newLocation()
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }
            let uploaded = try await env.upload(client, location.file)
            let tokenID = try #require(uploaded.token?.id)
            let first = try await env.syncNow(client, tokenID)
            let second = try await env.syncNow(client, tokenID)
            #expect(first.id == uploaded.syncJobId)
            #expect(second.id == uploaded.syncJobId)
        }
    }

    @Test("A worker that dies mid-sync: its job is taken up after the lease and finishes without duplicates")
    func workerKilledMidSync() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            let location = try env.newLocation()
            try env.core.addDeviceAssignments(
                uId: location.uId,
                adamId: SyncEnvironment.pages,
                count: 5,
                serialPrefix: "OURS"
            )
            let (tenant, client) = try await env.tenant()
            defer { Task { await client.close() } }
            let tenantID = try #require(UUID(uuidString: tenant.id))
            let uploaded = try await env.upload(client, location.file)
            let tokenID = try #require(UUID(uuidString: uploaded.token?.id ?? ""))
            // Five of the device licenses are this service's own (as if it had assigned them).
            try await env.sync.syncStore.recordServiceAssignments(
                tenantID: tenantID,
                tokenID: tokenID,
                (0..<5).map {
                    SyncedAssignment(
                        adamID: SyncEnvironment.pages,
                        pricingParam: "STDQ",
                        clientUserID: "",
                        serialNumber: "OURS\($0)"
                    )
                }
            )

            // A worker claims the job with a short lease, writes the assets, and dies while reading assignments.
            let claimed = try await env.sync.queue.claim(
                owner: "doomed-worker",
                kinds: [SyncJobs.kind],
                limit: 1,
                lease: .seconds(1)
            )
            let job = try #require(claimed.first)
            env.core.injectFault(
                SimulatorFault(kind: .latency, count: 1, latencyMilliseconds: 10_000, pathSuffix: "/assignments")
            )
            let reachedAssignments = AsyncStream<Void>.makeStream()
            let doomed = Task {
                try await env.sync.runner.run(tenantID: tenantID, tokenID: tokenID, jobID: job.id, full: true) {
                    phase,
                    _,
                    _ in
                    if phase == .assignments { reachedAssignments.continuation.yield() }
                }
            }
            for await _ in reachedAssignments.stream { break }
            doomed.cancel()  // dies: no heartbeat, no result written to the queue
            _ = await doomed.result
            env.core.clearFaults()
            #expect(try await env.apps(client).count == 2)  // the assets were written before it died

            // A live worker takes the job up once the lease has run out.
            let worker = JobWorker(
                queue: env.sync.queue,
                handlers: [SyncJobs.kind: env.sync.handler],
                configuration: JobWorkerConfiguration(
                    concurrency: 1,
                    lease: .seconds(5),
                    pollInterval: .milliseconds(200)
                ),
                logger: Logger(label: "test.worker")
            )
            let running = Task { try await worker.run() }
            defer { running.cancel() }
            let done = try await env.waitForJob(client, jobID: job.id.uuidString.lowercased()) { !$0.isActive }
            #expect(done.state == .succeeded, "\(done.error)")
            #expect(done.attempt == 2)
            let stats = try #require(done.stats)
            #expect(stats.apps == 2)
            #expect(stats.assignments == 5)
            #expect(stats.foreignAssignments == 1)
            let token = try await env.getToken(client, tokenID.uuidString.lowercased())
            #expect(token.appCount == 2)
            let ownRows = try await env.sync.syncStore.ownCounts(tenantID: tenantID, tokenID: tokenID)
            #expect(ownRows.assignments == 5)
            let assetRows = try await env.server.storage.pool.query(
                "SELECT count(*)::bigint FROM \(unescaped: TenantSchema(tenantID: tenantID).quotedSchema).assets"
            ).single().decode(Int.self, at: 0)
            #expect(assetRows == 3)
        }
    }

    @Test("R10: only users this service created are synced; other MDMs' users are counted, never stored")
    func ownAndForeignUsers() async throws {
        try await SyncEnvironment.run { env in
            let location = try env.newLocation()
            try env.core.addUsers(
                uId: location.uId,
                [.init(clientUserId: "ours-1", email: "pupil@example.com", status: .associated)]
            )
            try env.core.addAssignments(
                uId: location.uId,
                [Assignment(adamId: SyncEnvironment.pages, pricingParam: .standard, clientUserId: "ours-1")]
            )
            let (tenant, client) = try await env.tenant()
            defer { Task { await client.close() } }
            let tenantID = try #require(UUID(uuidString: tenant.id))
            let uploaded = try await env.upload(client, location.file)
            let tokenID = try #require(UUID(uuidString: uploaded.token?.id ?? ""))
            _ = try await env.waitForJob(client, jobID: uploaded.syncJobId) { !$0.isActive }
            // This service created "ours-1" (as user creation will record it).
            try await env.sync.syncStore.recordCreatedUser(
                tenantID: tenantID,
                tokenID: tokenID,
                clientUserID: "ours-1",
                email: ""
            )

            let job = try await env.syncNow(client, tokenID.uuidString.lowercased(), full: true)
            let done = try await env.waitForJob(client, jobID: job.id) { !$0.isActive }
            let stats = try #require(done.stats)
            #expect(stats.users == 1)
            #expect(stats.foreignUsers == 1)
            #expect(stats.assignments == 1)  // ours-1's license, taken in
            #expect(stats.foreignAssignments == 1)  // other-mdm-user's
            let schema = TenantSchema(tenantID: tenantID).quotedSchema
            let users = try await env.server.storage.pool.query(
                "SELECT client_user_id, status, email FROM \(unescaped: schema).vpp_users ORDER BY client_user_id"
            )
            #expect(users.count == 1)
            #expect(try users.single().decode(String.self, at: 1) == "Associated")
            #expect(try users.single().decode(String.self, at: 2) == "pupil@example.com")
            let stored = try await env.server.storage.pool.query(
                "SELECT count(*)::bigint FROM \(unescaped: schema).apple_assignments WHERE client_user_id = 'other-mdm-user'"
            ).single().decode(Int.self, at: 0)
            #expect(stored == 0)
        }
    }
}
