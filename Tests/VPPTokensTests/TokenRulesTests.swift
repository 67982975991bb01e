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

@Suite("VPP tokens: ownership, limits and tenant isolation", .timeLimit(.minutes(5)))
struct TokenRulesTests {
    @Test("R4: a token another MDM holds is refused, unless taken over")
    func otherMDM() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            let location = try env.newLocation()
            let other = MDMInfo(id: "other-mdm-id", name: "Other MDM", metadata: "1.0")
            try env.core.setMDMInfo(uId: location.uId, other)
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }

            let refused = await rpcError { _ = try await env.upload(client, location.file) }
            #expect(refused?.code == .failedPrecondition)
            #expect(refused?.reason == "TOKEN_CLAIMED_ELSEWHERE")
            #expect(refused?.message.contains("Other MDM") == true)
            #expect(refused?.message.contains("R4") == true)
            #expect(try await client.call(VppV1.TokenService.ListTokens.self, VppV1.ListTokensRequest()).tokens.isEmpty)

            let taken = try await env.upload(client, location.file, takeOver: true)
            #expect(taken.previousMdm == "Other MDM")
            // Apple now names this service.
            let session = env.sync.apple.session(token: try ServiceToken(fileContents: location.file, now: Date()))
            let config = try await session.clientConfig()
            #expect(config.mdmInfo?.id == env.sync.identity.id)
        }
    }

    @Test("R4: another MDM claiming the token after upload turns it 'claimed elsewhere' and stops its syncs")
    func claimedAfterUpload() async throws {
        try await SyncEnvironment.run { env in
            let location = try env.newLocation()
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }
            let uploaded = try await env.upload(client, location.file)
            let tokenID = try #require(uploaded.token?.id)
            _ = try await env.waitForJob(client, jobID: uploaded.syncJobId) { !$0.isActive }

            try env.core.setMDMInfo(uId: location.uId, MDMInfo(id: "thief", name: "Another MDM", metadata: ""))
            let job = try await env.syncNow(client, tokenID)
            let ended = try await env.waitForJob(client, jobID: job.id) { !$0.isActive }
            #expect(ended.state == .failed)
            #expect(ended.error.contains("Another MDM"))
            let token = try await env.getToken(client, tokenID)
            #expect(token.state == .claimedElsewhere)
            #expect(token.lastSync?.result == .failed)
            let again = await rpcError { _ = try await env.syncNow(client, tokenID) }
            #expect(again?.code == .failedPrecondition)
        }
    }

    @Test("R3: expired and revoked tokens stop syncing and say why")
    func expiredAndRevoked() async throws {
        try await SyncEnvironment.run { env in
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }
            for (change, expected) in [("expire", VppV1.TokenState.expired), ("revoke", .invalid)] {
                let location = try env.newLocation(change)
                let uploaded = try await env.upload(client, location.file)
                let tokenID = try #require(uploaded.token?.id)
                _ = try await env.waitForJob(client, jobID: uploaded.syncJobId) { !$0.isActive }
                if change == "expire" {
                    try env.core.expireToken(location.file)
                } else {
                    try env.core.revokeToken(location.file)
                }
                let job = try await env.syncNow(client, tokenID)
                let ended = try await env.waitForJob(client, jobID: job.id) { !$0.isActive }
                #expect(ended.state == .failed)
                #expect(ended.attempt == 1)  // not retried: it cannot heal
                let token = try await env.getToken(client, tokenID)
                #expect(token.state == expected)
                #expect(!token.stateReason.isEmpty)
                #expect(token.nextSyncAt == nil)  // off the schedule until renewed
            }
        }
    }

    @Test("Throttling: Retry-After is honoured and the sync still completes")
    func throttled() async throws {
        try await SyncEnvironment.run { env in
            let location = try env.newLocation()
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }
            env.core.clearRecordedRequests()
            env.core.injectFault(SimulatorFault(kind: .throttle, count: 3, retryAfterSeconds: 1, pathSuffix: "/assets"))
            let uploaded = try await env.upload(client, location.file)
            // Three throttled attempts, each retried no sooner than Retry-After plus backoff: allow a busy machine time.
            let ended = try await env.waitForJob(client, jobID: uploaded.syncJobId, timeout: .seconds(120)) {
                !$0.isActive
            }
            #expect(ended.state == .succeeded, "\(ended.error)")
            #expect(ended.attempt >= 2)
            // Every request after a throttled one waited at least its Retry-After.
            let requests = env.core.recordedRequests().filter { $0.path.hasSuffix("/assets") }
            #expect(requests.filter { $0.fault == .throttle }.count == 3)
            for (index, request) in requests.enumerated() where request.fault == .throttle && index + 1 < requests.count
            {
                #expect(requests[index + 1].atSeconds - request.atSeconds >= 0.95)
            }
        }
    }

    @Test("C4, R5: of two tenants uploading the same token at once, exactly one wins; the other learns nothing of it")
    func oneTenantPerToken() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            for round in 0..<5 {
                let location = try env.newLocation("Race \(round)")
                let secondFile = try env.core.issueToken(uId: location.uId)
                let (tenantA, clientA) = try await env.tenant("A\(round)")
                let (tenantB, clientB) = try await env.tenant("B\(round)")
                @Sendable func attempt(_ client: VPPClient, _ file: String) async -> Result<
                    VppV1.UploadTokenResponse, any Error
                > {
                    do { return .success(try await env.upload(client, file)) } catch { return .failure(error) }
                }
                async let first = attempt(clientA, location.file)
                async let second = attempt(clientB, secondFile)
                let results = await [first, second]
                let wins = results.filter { if case .success = $0 { true } else { false } }
                #expect(wins.count == 1)
                for case .failure(let error) in results {
                    let status = try #require(error as? RPCError)
                    #expect(status.code == .alreadyExists)
                    #expect(!status.message.contains(tenantA.id) && !status.message.contains(tenantB.id))
                    #expect(status.message.contains("C4"))
                }
                await clientA.close()
                await clientB.close()
            }
        }
    }

    @Test("C4: the same location twice in one tenant points at RenewToken")
    func sameLocationSameTenant() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            let location = try env.newLocation()
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }
            _ = try await env.upload(client, location.file)
            let again = await rpcError { _ = try await env.upload(client, try env.core.issueToken(uId: location.uId)) }
            #expect(again?.code == .alreadyExists)
            #expect(again?.message.contains("RenewToken") == true)
        }
    }

    @Test("C5, R2: the default limit of 256 tokens holds; the 257th is RESOURCE_EXHAUSTED")
    func defaultLimit() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            let (tenant, client) = try await env.tenant()
            defer { Task { await client.close() } }
            #expect(tenant.tokenLimit == 256)
            let files = try (0..<257).map { try env.newLocation("L\($0)").file }
            // 256 uploads, eight at a time.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for chunk in stride(from: 0, to: 256, by: 8) {
                    for file in files[chunk..<chunk + 8] {
                        group.addTask { _ = try await env.upload(client, file) }
                    }
                    try await group.waitForAll()
                }
            }
            let refused = await rpcError { _ = try await env.upload(client, files[256]) }
            #expect(refused?.code == .resourceExhausted)
            #expect(refused?.message.contains("256") == true)
        }
    }

    @Test("C5: concurrent uploads over a small limit: exactly the limit succeed")
    func limitRace() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            let (_, client) = try await env.tenant { $0.tokenLimit = 3 }
            defer { Task { await client.close() } }
            let files = try (0..<8).map { try env.newLocation("L\($0)").file }
            let results = await withTaskGroup(of: Bool.self) { group in
                for file in files { group.addTask { (try? await env.upload(client, file)) != nil } }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 3)
            let list = try await client.call(VppV1.TokenService.ListTokens.self, VppV1.ListTokensRequest())
            #expect(list.tokens.count == 3)
        }
    }

    @Test("C3: tenant A's key with tenant B's ids gets NOT_FOUND, exactly as for ids that never existed")
    func isolation() async throws {
        try await SyncEnvironment.run { env in
            let location = try env.newLocation()
            let (_, clientA) = try await env.tenant("A")
            let (_, clientB) = try await env.tenant("B")
            defer {
                Task {
                    await clientA.close()
                    await clientB.close()
                }
            }
            let uploaded = try await env.upload(clientB, location.file)
            let tokenID = try #require(uploaded.token?.id)
            _ = try await env.waitForJob(clientB, jobID: uploaded.syncJobId) { !$0.isActive }
            let assetID = try #require(try await env.apps(clientB).first?.id)

            let unknown = UUID().uuidString.lowercased()
            for id in [tokenID, unknown] {
                let get = await rpcError { _ = try await env.getToken(clientA, id) }
                #expect(get?.code == .notFound)
                #expect(get?.message == "No token with id \(id).")
                let sync = await rpcError { _ = try await env.syncNow(clientA, id) }
                #expect(sync?.code == .notFound)
                let delete = VppV1.DeleteTokenRequest(tokenId: id, confirm: id)
                #expect(
                    await rpcError { _ = try await clientA.call(VppV1.TokenService.DeleteToken.self, delete) }?.code
                        == .notFound
                )
                let renew = VppV1.RenewTokenRequest(tokenId: id, tokenFile: Array(location.file.utf8))
                #expect(
                    await rpcError { _ = try await clientA.call(VppV1.TokenService.RenewToken.self, renew) }?.code
                        == .notFound
                )
                #expect(await rpcError { _ = try await env.apps(clientA, tokenID: id) }?.code == .notFound)
                let jobs = VppV1.ListSyncJobsRequest(tokenId: id)
                #expect(
                    await rpcError { _ = try await clientA.call(VppV1.SyncService.ListSyncJobs.self, jobs) }?.code
                        == .notFound
                )
            }
            for id in [assetID, unknown] {
                let get = VppV1.GetAssetRequest(assetId: id)
                #expect(
                    await rpcError { _ = try await clientA.call(VppV1.CatalogService.GetAsset.self, get) }?.code
                        == .notFound
                )
            }
            for id in [uploaded.syncJobId, unknown] {
                let get = VppV1.GetSyncJobRequest(jobId: id)
                let job = await rpcError { _ = try await clientA.call(VppV1.SyncService.GetSyncJob.self, get) }
                #expect(job?.code == .notFound)
                #expect(job?.message == "No sync job with id \(id).")
                #expect(await rpcError { _ = try await env.watch(clientA, jobID: id) }?.code == .notFound)
            }
            // A's views are empty, B's intact.
            #expect(try await env.apps(clientA).isEmpty)
            #expect(
                try await clientA.call(VppV1.SyncService.ListSyncJobs.self, VppV1.ListSyncJobsRequest()).jobs.isEmpty
            )
            #expect(try await env.getToken(clientB, tokenID).appCount == 2)
        }
    }

    @Test("DeleteTenant releases the tenant's tokens: another tenant may upload them")
    func deleteTenantReleasesTokens() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            let location = try env.newLocation()
            let (tenantA, clientA) = try await env.tenant("A")
            let (_, clientB) = try await env.tenant("B")
            defer {
                Task {
                    await clientA.close()
                    await clientB.close()
                }
            }
            _ = try await env.upload(clientA, location.file)
            #expect(await rpcError { _ = try await env.upload(clientB, location.file) }?.code == .alreadyExists)

            let operatorClient = env.server.operatorClient()
            let deleted = try await operatorClient.call(
                VppV1.OperatorService.DeleteTenant.self,
                VppV1.DeleteTenantRequest(tenantId: tenantA.id, confirm: tenantA.id)
            )
            #expect(deleted.releasedTokens == 1)
            await operatorClient.close()
            _ = try await env.upload(clientB, location.file)
        }
    }

    @Test("A suspended tenant's syncs stop")
    func suspendedTenant() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            let location = try env.newLocation()
            let (tenant, client) = try await env.tenant()
            defer { Task { await client.close() } }
            let uploaded = try await env.upload(client, location.file)
            let operatorClient = env.server.operatorClient()
            _ = try await operatorClient.call(
                VppV1.OperatorService.SuspendTenant.self,
                VppV1.SuspendTenantRequest(tenantId: tenant.id)
            )
            await operatorClient.close()

            // The queued first sync runs now and stops at once, without retries.
            let jobs = try await env.sync.queue.claim(
                owner: "test",
                kinds: [SyncJobs.kind],
                limit: 1,
                lease: .seconds(30)
            )
            let job = try #require(jobs.first)
            #expect(job.id.uuidString.lowercased() == uploaded.syncJobId)
            do {
                _ = try await env.sync.runner.run(
                    tenantID: try #require(UUID(uuidString: tenant.id)),
                    tokenID: try #require(UUID(uuidString: uploaded.token?.id ?? "")),
                    jobID: job.id,
                    full: true
                ) { _, _, _ in }
                Issue.record("the sync of a suspended tenant ran")
            } catch let error as SyncFailure {
                #expect(error.disposition == .stop)
                #expect(error.message.contains("suspended"))
            }
            // And the scheduler does not queue its tokens.
            try await env.server.storage.pool.query(
                "UPDATE vpp_control.token_registry SET next_sync_at = now() - interval '1 hour'"
            )
            let scheduler = SyncScheduler(
                storage: env.server.storage,
                queue: env.sync.queue,
                interval: .seconds(3600),
                logger: .init(label: "test")
            )
            #expect(try await scheduler.scheduleDue() == 0)
        }
    }
}
