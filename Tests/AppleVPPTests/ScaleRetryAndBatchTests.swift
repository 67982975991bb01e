import AppleVPP
import AppleVPPSimulator
import Foundation
import Synchronization
import Testing

@Suite("Pagination at scale, retries and batching against the simulator")
struct ScaleRetryAndBatchTests {
    typealias Env = SimulatorEnvironment

    @Test func readsOneHundredThousandAssignmentsPageByPageAndThenOnlyTheChanges() async throws {
        try await Env.run { env in
            try env.simulator.core.addDeviceAssignments(uId: env.uId, adamId: Env.freeApp, count: 100_000)
            // Throughput is measured by `vpp-load sync` (docs/performance.md), not asserted here: a timed test fails
            // on a busy machine for no fault of the code.
            let all = try await env.session.allAssignments()
            #expect(all.items.count == 100_001)  // and the fixture's one user assignment
            #expect(all.consistent)
            #expect(Set(all.items.compactMap(\.serialNumber)).count == 100_000)
            let pageRequests = env.simulator.core.recordedRequests().filter { $0.path == "/assignments" }
            #expect(pageRequests.count == 101)  // 1,000 per page

            _ = try await env.finish(
                try await env.session.associate(
                    ManageAssetsRequest(assets: [AssetReference(adamId: Env.pages)], serialNumbers: ["NEW1", "NEW2"])
                )
            )
            let changes = try await env.session.allAssignments(sinceVersionId: all.versionId)
            #expect(changes.items.compactMap(\.serialNumber).sorted() == ["NEW1", "NEW2"])
            #expect(changes.versionId != all.versionId)
        }
    }

    @Test(
        "A long read of assignments reports its progress page by page (issue 16: sync progress moved only at the end)"
    )
    func assignmentsReadReportsProgress() async throws {
        try await Env.run { env in
            try env.simulator.core.addDeviceAssignments(uId: env.uId, adamId: Env.freeApp, count: 5_000)
            let seen = Mutex<[(read: Int, expected: Int)]>([])
            let all = try await env.session.allAssignments(progress: { read, expected in
                seen.withLock { $0.append((read, expected)) }
            })
            let reports = seen.withLock { $0 }
            #expect(all.items.count == 5_001)
            #expect(reports.count == 6, "one report per page")
            #expect(reports.first?.read == 1_000)
            #expect(reports.first?.expected == 6_000, "the pages Apple announced times the first page's size")
            #expect(reports.last?.read == 5_001)
            #expect(zip(reports, reports.dropFirst()).allSatisfy { $0.read < $1.read })
            #expect(reports.allSatisfy { $0.read <= $0.expected })
        }
    }

    @Test func eventsCanCompleteOnTheirOwnAfterADelay() async throws {
        // Long enough that the status read right after the request still finds the event pending on a busy machine.
        let configuration = SimulatorConfiguration(eventCompletion: .afterDelay(.seconds(20)))
        try await Env.run(configuration: configuration) { env in
            let event = try await env.session.associate(
                ManageAssetsRequest(assets: [AssetReference(adamId: Env.pages)], serialNumbers: ["LATE"])
            )
            #expect(try await env.session.eventStatus(event.eventId).eventStatus == .pending)
            let status = try await env.session.waitForEvent(
                event.eventId,
                pollInterval: .milliseconds(100),
                timeout: .seconds(30)
            )
            #expect(status.eventStatus == .complete)
            #expect(try await env.asset(Env.pages).assignedCount == 2)
        }
    }

    @Test func throttlingIsRetriedNoSoonerThanRetryAfter() async throws {
        try await Env.run { env in
            _ = try await env.client.serviceConfig()
            env.simulator.core.injectFault(SimulatorFault(kind: .throttle, count: 1, retryAfterSeconds: 1))
            let page = try await env.session.assets()
            #expect(page.assets?.isEmpty == false)
            let requests = env.simulator.core.recordedRequests().filter { $0.path == "/assets" }
            #expect(requests.count == 2)
            #expect(requests[0].status == 429 && requests[0].fault == .throttle)
            #expect(requests[1].status == 200)
            #expect(requests[1].atSeconds - requests[0].atSeconds >= 1.0)
        }
    }

    @Test func serverErrorsAreRetriedWithRetryAfterAndGiveUpAfterTheLastAttempt() async throws {
        try await Env.run(retryPolicy: Env.fastRetries(maxAttempts: 3)) { env in
            _ = try await env.client.serviceConfig()
            env.simulator.core.injectFault(SimulatorFault(kind: .unavailable, count: 1, retryAfterSeconds: 1))
            env.simulator.core.injectFault(SimulatorFault(kind: .internalError, count: 1))
            _ = try await env.session.clientConfig()
            let requests = env.simulator.core.recordedRequests().filter { $0.path == "/client/config" }
            #expect(requests.map(\.status) == [503, 500, 200])
            #expect(requests[1].atSeconds - requests[0].atSeconds >= 1.0)

            env.simulator.core.injectFault(SimulatorFault(kind: .internalError, count: 5))
            let error = await appleError { try await env.session.clientConfig() }
            #expect(error?.errorNumber == 9603 && error?.httpStatus == 500)
            #expect(env.simulator.core.recordedRequests().filter { $0.path == "/client/config" }.count == 3 + 3)
            env.simulator.core.clearFaults()
        }
    }

    @Test func addedLatencyStillAnswers() async throws {
        try await Env.run { env in
            env.simulator.core.injectFault(
                SimulatorFault(kind: .latency, latencyMilliseconds: 200, pathSuffix: "/users")
            )
            let started = ContinuousClock.now
            _ = try await env.session.users()
            #expect(started.duration(to: .now) >= .milliseconds(200))
        }
    }

    /// The simulator refuses oversize requests with 9700–9702 and 9714, so these passing proves every batch was
    /// within the limits from service config.
    @Test func batchedWritesStayWithinTheServiceConfigLimits() async throws {
        let limits = [
            "maxAssets": 3, "maxClientUserIds": 4, "maxSerialNumbers": 5, "maxRevokeClientUserIds": 2,
            "maxRevokeSerialNumbers": 2, "maxUsers": 3,
        ]
        var fixture = Env.fixture
        fixture.locations?[0].assets = (0..<7).map {
            SimulatorFixture.Asset(adamId: "20000000\($0)", totalCount: 100)
        }
        fixture.locations?[0].assignments = []
        try await Env.run(configuration: SimulatorConfiguration(limits: limits), fixture: fixture) { env in
            #expect(try await env.client.limits().maxAssets == 3)
            let assets = (0..<7).map { AssetReference(adamId: "20000000\($0)") }
            let serials = (0..<12).map { "SER\($0)" }
            let users = (0..<10).map { RequestUser(clientUserId: "user\($0)", email: "user\($0)@example.com") }

            let created = try await env.session.createUsers(users)
            #expect(created.count == 4)
            for event in created { #expect(try await env.finish(event).eventStatus == .complete) }

            let events = try await env.session.associateInBatches(
                assets: assets,
                clientUserIds: users.map(\.clientUserId),
                serialNumbers: serials
            )
            #expect(events.count == 3 * (3 + 3))
            for event in events { #expect(try await env.finish(event).eventStatus == .complete) }
            let counts = try await env.session.allAssets().items
            #expect(counts.allSatisfy { $0.assignedCount == 10 + 12 })

            let revokes = try await env.session.revokeInBatches(serialNumbers: serials)
            #expect(revokes.count == 6)
            for event in revokes { _ = try await env.finish(event) }
            #expect(try await env.session.allAssets().items.allSatisfy { $0.assignedCount == 10 })

            // One oversize request as it is: the simulator refuses it.
            let oversize = await appleError {
                try await env.session.associate(ManageAssetsRequest(assets: assets, serialNumbers: ["x"]))
            }
            #expect(oversize?.errorNumber == 9700)
        }
    }

    @Test func controlAPIOverHTTP() async throws {
        try await Env.run { env in
            let control = env.simulator.baseURL.replacingOccurrences(of: "/mdm/v2", with: "/_control")
            func post(_ path: String, _ json: String) async throws -> (Int, Data) {
                var request = HTTPClientRequestBuilder.post(control + path, json)
                request.headers.add(name: "Content-Type", value: "application/json")
                let response = try await env.httpClient.execute(request, timeout: .seconds(5))
                return (Int(response.status.code), Data(buffer: try await response.body.collect(upTo: 1 << 20)))
            }
            let (status, body) = try await post(
                "/locations",
                #"{"uId":"42","locationName":"Annex","assets":[{"adamId":"7","totalCount":2}]}"#
            )
            #expect(status == 200)
            let created = try JSONSerialization.jsonObject(with: body) as? [String: String]
            let token = try ServiceToken(fileContents: try #require(created?["vppToken"]), now: Date())
            let annex = env.client.session(token: token)
            #expect(try await annex.clientConfig().locationName == "Annex")
            #expect(try await post("/purchases", #"{"uId":"42","adamId":"7","count":3}"#).0 == 200)
            #expect(try await annex.assets().assets?.first?.totalCount == 5)
            #expect(try await post("/tokens/revoke", #"{"vppToken":"\#(token.bearerCredential)"}"#).0 == 200)
            #expect(await appleError { try await annex.assets() }?.errorNumber == 9625)
            #expect(try await post("/nothing", "{}").0 == 404)
            #expect(try await post("/purchases", "{}").0 == 400)
        }
    }
}
