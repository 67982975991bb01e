import AppleVPP
import AppleVPPSimulator
import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import VPPClient
import VPPProto
import VPPStorage
import VPPTestSupport
import VPPTesting
import VPPWire

/// Issue 18: what the notification listener accepts and refuses, posted to it directly (as Apple, or as someone who
/// is not Apple).
@Suite("Apple's notifications: the listener", .timeLimit(.minutes(3)))
struct NotificationEndpointTests {
    struct Posted {
        var status: UInt
        var body: String
    }

    static func post(_ url: String, bearer: String?, body: Data) async throws -> Posted {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let text = try await response.body.collect(upTo: 1 << 20)
        return Posted(status: response.status.code, body: String(buffer: text))
    }

    static func body(id: String, type: String = "TEST_NOTIFICATION", uId: String, payload: String = "{}") -> Data {
        Data(
            """
            {"notification":\(payload),"notificationId":"\(id)","notificationType":"\(type)","uId":"\(uId)"}
            """.utf8
        )
    }

    @Test(
        "a forged or missing bearer, an unknown token, a bad or oversized body and another location are refused; a repeat changes nothing; C3 holds"
    )
    func hostileRequests() async throws {
        try await SyncEnvironment.run(notifications: true) { env in
            let location = try env.newLocation()
            let (tenant, client) = try await env.tenant()
            defer { Task { await client.close() } }
            let uploaded = try await env.upload(client, location.file)
            let token = try #require(uploaded.token)
            _ = try await env.waitForJob(client, jobID: uploaded.syncJobId) { !$0.isActive }
            let tenantID = try #require(UUID(uuidString: tenant.id))
            let tokenID = try #require(UUID(uuidString: token.id))
            let base = try #require(env.server.notificationURL)
            let url = "\(base)/\(tenant.id)/\(token.id)"
            let secret = try await env.sync.tokens.notificationSecret(tenantID: tenantID, tokenID)
            // The upload subscribed the token (and its first sync, racing the upload's claim, may have too): the
            // simulator's TEST_NOTIFICATIONs are the ones already there.
            func listed() async throws -> [VppV1.AppleNotification] {
                try await client.call(
                    VppV1.TokenService.ListTokenNotifications.self,
                    VppV1.ListTokenNotificationsRequest(tokenId: token.id)
                ).notifications
            }
            func jobCount() async throws -> Int {
                try await env.server.pool.query(
                    "SELECT count(*)::bigint FROM vpp_control.jobs WHERE kind = 'apple-notification' AND tenant_id = \(tenantID)"
                ).single().decode(Int.self, at: 0)
            }
            #expect(await eventually { try await listed().count >= 1 })
            let baseline = try await listed()
            #expect(baseline.allSatisfy { $0.type == "TEST_NOTIFICATION" })
            let baselineJobs = try await jobCount()

            // Someone who is not Apple: no bearer, a wrong one, a guess of the URL of another token.
            let good = Self.body(id: "n-1", uId: location.uId)
            #expect(try await Self.post(url, bearer: nil, body: good).status == 401)
            #expect(try await Self.post(url, bearer: "not-the-secret", body: good).status == 401)
            #expect(try await Self.post(url, bearer: secret + "x", body: good).status == 401)
            #expect(try await Self.post("\(base)/\(tenant.id)/\(UUID())", bearer: secret, body: good).status == 401)
            #expect(try await Self.post("\(base)/\(UUID())/\(token.id)", bearer: secret, body: good).status == 401)
            #expect(
                try await Self.post(
                    "\(base)/x%27%3B%20DROP%20TABLE%20tokens%3B--/\(token.id)",
                    bearer: secret,
                    body: good
                )
                .status == 404
            )
            // Apple's secret, but not a notification, another location, or too big.
            #expect(try await Self.post(url, bearer: secret, body: Data("{\"hello\":1}".utf8)).status == 400)
            #expect(try await Self.post(url, bearer: secret, body: Data([0xFF, 0x00, 0x12])).status == 400)
            #expect(try await Self.post(url, bearer: secret, body: Self.body(id: "n-2", uId: "999")).status == 400)
            let huge = Data(repeating: 0x20, count: 300 * 1024)
            #expect(try await Self.post(url, bearer: secret, body: huge).status == 413)

            var shown = try await env.getToken(client, token.id)
            #expect(shown.notifications?.refusedCount == 2)  // the two wrong bearers for this token
            #expect(shown.notifications?.receivedCount == UInt64(baseline.count))
            #expect(try await listed().count == baseline.count)

            // Apple, twice with the same notificationId: recorded once, processed once.
            let first = try await Self.post(url, bearer: secret, body: good)
            #expect(first.status == 200)
            let again = try await Self.post(url, bearer: secret, body: good)
            #expect(again.status == 200)
            #expect(again.body.contains("already recorded"))
            #expect(
                await eventually {
                    let ours = try await listed().filter { $0.notificationId == "n-1" }
                    return ours.count == 1 && ours[0].processedAt != nil
                }
            )
            shown = try await env.getToken(client, token.id)
            #expect(shown.notifications?.receivedCount == UInt64(baseline.count + 1))
            #expect(shown.notifications?.lastType == "TEST_NOTIFICATION")
            #expect(try await jobCount() == baselineJobs + 1)

            // The types this service does not act on yet are recorded and shown, nothing more.
            let subscription = Self.body(
                id: "n-sub",
                type: "SUBSCRIPTION_COUNT",
                uId: location.uId,
                payload: #"{"adamId":"1","countDelta":5}"#
            )
            #expect(try await Self.post(url, bearer: secret, body: subscription).status == 200)
            #expect(
                await eventually {
                    try await listed().first { $0.notificationId == "n-sub" }?.outcome.contains("does not act") == true
                }
            )

            // C3: another tenant cannot list this token's notifications.
            let (_, other) = try await env.tenant("Other")
            defer { Task { await other.close() } }
            await #expect(throws: RPCError.self) {
                _ = try await other.call(
                    VppV1.TokenService.ListTokenNotifications.self,
                    VppV1.ListTokenNotificationsRequest(tokenId: token.id)
                )
            }
        }
    }
}
