import AppleVPP
import AppleVPPSimulator
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing
import VPPTestSupport

/// An MDM's notification endpoint on 127.0.0.1: records every POST and answers the statuses it is told to (then 200).
final class NotificationReceiver: Sendable {
    struct Received: Sendable {
        var authorization: String?
        var contentType: String?
        var body: Data
        var header: NotificationHeader? { try? NotificationHeader.decode(body) }
    }

    let url: String
    private let received: NIOLockedValueBox<[Received]>
    private let statuses: NIOLockedValueBox<[Int]>
    private let task: Task<Void, any Error>

    private init(
        url: String,
        statuses: NIOLockedValueBox<[Int]>,
        received: NIOLockedValueBox<[Received]>,
        task: Task<Void, any Error>
    ) {
        self.url = url
        self.statuses = statuses
        self.received = received
        self.task = task
    }

    /// Runs a receiver around `body`; `statuses` are the answers to the first requests, in order.
    static func run<T: Sendable>(
        statuses: [Int] = [],
        _ body: (NotificationReceiver) async throws -> T
    ) async throws -> T {
        let received = NIOLockedValueBox<[Received]>([])
        let queue = NIOLockedValueBox(statuses)
        let router = Router()
        router.post("/notify") { request, _ -> Response in
            var request = request
            let buffer = try await request.collectBody(upTo: 1 << 22)
            received.withLockedValue {
                $0.append(
                    Received(
                        authorization: request.headers[.authorization],
                        contentType: request.headers[.contentType],
                        body: Data(buffer.readableBytesView)
                    )
                )
            }
            let status = queue.withLockedValue { $0.isEmpty ? 200 : $0.removeFirst() }
            return Response(status: HTTPResponse.Status(code: status))
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "notification-receiver")
        logger.logLevel = .critical  // stopping it by cancellation logs errors that mean nothing here
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: logger
        )
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestFailure("the receiver did not start") }
        let receiver = NotificationReceiver(
            url: "http://127.0.0.1:\(port)/notify",
            statuses: queue,
            received: received,
            task: task
        )
        do {
            let result = try await body(receiver)
            await receiver.stop()
            return result
        } catch {
            await receiver.stop()
            throw error
        }
    }

    private func stop() async {
        task.cancel()
        _ = try? await task.value
    }

    /// Answers the next requests with these statuses (before the ones queued already are used up: after them).
    func answer(_ statuses: [Int]) { self.statuses.withLockedValue { $0 += statuses } }

    var all: [Received] { received.withLockedValue { $0 } }

    /// The bodies received of one type, in arrival order.
    func bodies(_ type: NotificationType) -> [Data] {
        all.filter { $0.header?.notificationType == type }.map(\.body)
    }

    func payloads<P: Codable & Hashable & Sendable>(_ type: NotificationType, as payload: P.Type) throws -> [P] {
        try bodies(type).map { try NotificationEnvelope<P>.decode($0).notification }
    }
}

@Suite("The simulator's notifications")
struct SimulatorNotificationTests {
    typealias Env = SimulatorEnvironment
    static let secret = "SUp3rS3Cr3t"
    /// Short retries, so a retried notification settles within a test.
    static let fast = SimulatorConfiguration(
        eventCompletion: .immediately,
        notificationRetryDelays: [.milliseconds(50), .milliseconds(50)],
        notificationTimeout: .seconds(5)
    )

    /// Points the location's notifications at `receiver` (the TEST handshake included).
    static func subscribe(
        _ env: Env,
        _ receiver: NotificationReceiver,
        types: [String]? = nil
    ) async throws {
        _ = try await env.session.setClientConfig(
            ClientConfigRequest(notificationUrl: receiver.url, notificationAuthToken: secret, notificationTypes: types)
        )
    }

    enum Method { case GET, POST, DELETE }

    /// A control API call over HTTP; the body of its 200 answer.
    static func control(_ env: Env, _ method: Method, _ path: String, _ json: String = "") async throws -> Data {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(env.simulator.port)/_control" + path)
        switch method {
        case .GET: request.method = .GET
        case .POST: request.method = .POST
        case .DELETE: request.method = .DELETE
        }
        if !json.isEmpty { request.body = .bytes(ByteBuffer(string: json)) }
        let response = try await env.httpClient.execute(request, timeout: .seconds(10))
        let body = Data(buffer: try await response.body.collect(upTo: 1 << 24))
        guard response.status == .ok else {
            throw TestFailure("\(method) \(path): \(response.status) \(String(decoding: body, as: UTF8.self))")
        }
        return body
    }

    static func delivered(_ env: Env, _ type: NotificationType, count: Int) async -> Bool {
        await eventually(timeout: .seconds(20)) {
            env.simulator.core.notificationLog().filter { $0.notificationType == type && $0.status == .delivered }
                .count >= count
        }
    }

    // MARK: The TEST_NOTIFICATION handshake

    @Test func theHandshakeSendsATestNotificationAndKeepsTheConfigWhenAnswered2xx() async throws {
        try await NotificationReceiver.run(statuses: [204]) { receiver in
            try await Env.run(configuration: Self.fast) { env in
                let config = try await env.session.setClientConfig(
                    ClientConfigRequest(
                        mdmInfo: MDMInfo(id: "ours", name: "VPP License Server", metadata: "1"),
                        notificationUrl: receiver.url,
                        notificationAuthToken: Self.secret,
                        notificationTypes: ["ASSET_COUNT"]
                    )
                )
                #expect(config.notificationUrl == receiver.url)
                #expect(config.subscribedNotificationTypes == ["ASSET_COUNT"])
                // Sent before the answer, whatever the types subscribed.
                let test = try #require(receiver.all.first)
                #expect(receiver.all.count == 1)
                #expect(test.authorization == "Bearer \(Self.secret)")
                #expect(test.contentType == "application/json")
                let envelope = try NotificationEnvelope<EmptyNotification>.decode(test.body)
                #expect(envelope.notificationType == .test)
                #expect(envelope.uId == env.uId)
                #expect(String(decoding: test.body, as: UTF8.self).hasPrefix(#"{"notification":{},"#))
                let log = env.simulator.core.notificationLog()
                #expect(log.map(\.status) == [.delivered])
                #expect(log.first?.notificationId == envelope.notificationId)
                #expect(log.first?.lastHTTPStatus == 204)
                #expect(try await env.session.clientConfig().mdmInfo?.id == "ours")
            }
        }
    }

    @Test func aRefusedHandshakeIs9728AndChangesNothing() async throws {
        // An unreachable URL takes the whole timeout (the HTTP client tries to connect until then).
        var configuration = Self.fast
        configuration.notificationTimeout = .seconds(1)
        try await NotificationReceiver.run(statuses: [500]) { receiver in
            try await Env.run(configuration: configuration) { env in
                let request = ClientConfigRequest(
                    mdmInfo: MDMInfo(id: "ours", name: "VPP License Server", metadata: "1"),
                    notificationUrl: receiver.url,
                    notificationAuthToken: Self.secret,
                    notificationTypes: ["ASSET_COUNT"]
                )
                let refused = await appleError { try await env.session.setClientConfig(request) }
                #expect(refused?.errorNumber == 9728)
                #expect(refused?.httpStatus == 400)
                #expect(receiver.all.count == 1, "one attempt only")
                let unreachable = await appleError {
                    try await env.session.setClientConfig(
                        ClientConfigRequest(notificationUrl: "http://127.0.0.1:1/nobody", notificationAuthToken: "t")
                    )
                }
                #expect(unreachable?.errorNumber == 9728)
                let config = try await env.session.clientConfig()
                #expect(config.mdmInfo == nil)
                #expect(config.notificationUrl == nil)
                #expect(config.notificationAuthToken == nil)
                #expect(config.subscribedNotificationTypes?.isEmpty != false)
                #expect(env.simulator.core.notificationLog().map(\.status) == [.failed, .failed])
            }
        }
    }

    @Test func plainHTTPIsRefusedUnlessTheHostIsLoopback() async throws {
        try await Env.run(configuration: Self.fast) { env in
            for url in ["http://example.com/notify", "ftp://127.0.0.1/notify", "not a url"] {
                let error = await appleError {
                    try await env.session.setClientConfig(
                        ClientConfigRequest(notificationUrl: url, notificationAuthToken: "t")
                    )
                }
                #expect(error?.errorNumber == 9712, "\(url)")
            }
            #expect(env.simulator.core.notificationLog().isEmpty)
        }
    }

    // MARK: What is sent when

    @Test func anAssociationCompletedAfterADelayIsNotifiedWithNobodyPolling() async throws {
        let configuration = SimulatorConfiguration(eventCompletion: .afterDelay(.milliseconds(200)))
        try await NotificationReceiver.run { receiver in
            try await Env.run(configuration: configuration) { env in
                try await Self.subscribe(env, receiver)
                let event = try await env.session.associate(
                    ManageAssetsRequest(assets: [AssetReference(adamId: Env.pages)], serialNumbers: ["S1", "S2"])
                )
                #expect(await eventually(timeout: .seconds(20)) { !receiver.bodies(.assetManagement).isEmpty })
                let body = try #require(receiver.bodies(.assetManagement).first)
                let envelope = try NotificationEnvelope<AssetManagementNotification>.decode(body)
                #expect(envelope.uId == env.uId)
                #expect(envelope.notification.eventId == event.eventId)
                #expect(envelope.notification.result == .success)
                #expect(envelope.notification.type == .associate)
                #expect(envelope.notification.error == nil)
                #expect(
                    envelope.notification.assignments == [
                        Assignment(adamId: Env.pages, pricingParam: .standard, serialNumber: "S1"),
                        Assignment(adamId: Env.pages, pricingParam: .standard, serialNumber: "S2"),
                    ]
                )
                let delivery = try #require(receiver.all.first { $0.header?.notificationType == .assetManagement })
                #expect(delivery.authorization == "Bearer \(Self.secret)")
                #expect(env.simulator.core.recordedRequests().allSatisfy { $0.path != "/status" })
                #expect(try await env.session.eventStatus(event.eventId).eventStatus == .complete)
            }
        }
    }

    @Test func licensesRunningOutGiveAFailureNotificationWith9709() async throws {
        try await NotificationReceiver.run { receiver in
            try await Env.run(configuration: Self.fast) { env in
                try await Self.subscribe(env, receiver)
                let serials = (1...5).map { "DEV\($0)" }
                let event = try await env.session.associate(
                    ManageAssetsRequest(assets: [AssetReference(adamId: Env.customApp)], serialNumbers: serials)
                )
                #expect(await Self.delivered(env, .assetManagement, count: 2))
                let payloads = try receiver.payloads(.assetManagement, as: AssetManagementNotification.self)
                #expect(payloads.allSatisfy { $0.eventId == event.eventId && $0.type == .associate })
                let success = try #require(payloads.first { $0.result == .success })
                let failure = try #require(payloads.first { $0.result == .failure })
                #expect(success.assignments?.compactMap(\.serialNumber) == ["DEV1", "DEV2", "DEV3"])
                #expect(success.error == nil)
                #expect(failure.assignments?.compactMap(\.serialNumber) == ["DEV4", "DEV5"])
                #expect(failure.assignments?.allSatisfy { $0.adamId == Env.customApp } == true)
                #expect(failure.error?.errorNumber == 9709)
                #expect(failure.error?.errorMessage?.isEmpty == false)
                #expect(payloads.count == 2)
            }
        }
    }

    @Test func moreThan100AssignmentsAreSplitIntoSeveralNotifications() async throws {
        try await NotificationReceiver.run { receiver in
            try await Env.run(configuration: Self.fast) { env in
                try await Self.subscribe(env, receiver, types: ["ASSET_MANAGEMENT"])
                try env.simulator.core.addPurchase(uId: env.uId, adamId: Env.pages, count: 300)
                let serials = (0..<250).map { "BULK\($0)" }
                let event = try await env.session.associate(
                    ManageAssetsRequest(assets: [AssetReference(adamId: Env.pages)], serialNumbers: serials)
                )
                #expect(await Self.delivered(env, .assetManagement, count: 3))
                let payloads = try receiver.payloads(.assetManagement, as: AssetManagementNotification.self)
                #expect(payloads.count == 3)
                #expect(payloads.allSatisfy { $0.eventId == event.eventId && $0.result == .success })
                #expect(payloads.map { $0.assignments?.count ?? 0 }.sorted() == [50, 100, 100])
                #expect(Set(payloads.flatMap { $0.assignments ?? [] }.compactMap(\.serialNumber)) == Set(serials))
                // Distinct notifications, not one sent three times.
                #expect(Set(receiver.all.compactMap(\.header?.notificationId)).count == receiver.all.count)
            }
        }
    }

    @Test func revokeListsWhatItRemovedAndAnEmptyRevokeStillSucceeds() async throws {
        try await NotificationReceiver.run { receiver in
            try await Env.run(configuration: Self.fast) { env in
                try await Self.subscribe(env, receiver, types: ["ASSET_MANAGEMENT"])
                _ = try await env.session.associate(
                    ManageAssetsRequest(assets: [AssetReference(adamId: Env.pages)], serialNumbers: ["R1"])
                )
                let revoke = try await env.session.revoke(RevokeAssetsRequest(serialNumbers: ["R1"]))
                let empty = try await env.session.revoke(RevokeAssetsRequest(serialNumbers: ["NOTHING"]))
                #expect(await Self.delivered(env, .assetManagement, count: 3))
                let payloads = try receiver.payloads(.assetManagement, as: AssetManagementNotification.self)
                let revoked = try #require(payloads.first { $0.eventId == revoke.eventId })
                #expect(revoked.type == .revoke && revoked.result == .success)
                #expect(
                    revoked.assignments == [Assignment(adamId: Env.pages, pricingParam: .standard, serialNumber: "R1")]
                )
                let nothing = try #require(payloads.first { $0.eventId == empty.eventId })
                #expect(nothing.type == .revoke && nothing.result == .success)
                #expect(nothing.assignments == [])
            }
        }
    }

    @Test func creatingUsersSendsUserManagementWithSuccessesAndFailures() async throws {
        try await NotificationReceiver.run { receiver in
            try await Env.run(configuration: Self.fast) { env in
                try await Self.subscribe(env, receiver, types: ["USER_MANAGEMENT"])
                let events = try await env.session.createUsers([
                    RequestUser(clientUserId: "new-1", email: "one@example.com"),
                    RequestUser(clientUserId: "new-2"),
                    RequestUser(clientUserId: "other-mdm-user"),
                ])
                #expect(await Self.delivered(env, .userManagement, count: 2))
                let payloads = try receiver.payloads(.userManagement, as: UserManagementNotification.self)
                #expect(payloads.allSatisfy { $0.eventId == events.first?.eventId && $0.type == .create })
                let success = try #require(payloads.first { $0.result == .success })
                #expect(success.users?.map(\.clientUserId) == ["new-1", "new-2"])
                #expect(success.users?.first?.email == "one@example.com")
                #expect(success.users?.allSatisfy { $0.status == .registered && $0.inviteCode != nil } == true)
                #expect(
                    success.users
                        == (try env.simulator.core.users(uId: env.uId)).filter { $0.clientUserId != "other-mdm-user" }
                )
                let failure = try #require(payloads.first { $0.result == .failure })
                #expect(failure.error?.errorNumber == 9716)
                #expect(failure.users?.map(\.clientUserId) == ["other-mdm-user"])
                #expect(failure.users?.first?.status == .associated)
            }
        }
    }

    @Test func acceptingAnInvitationSendsUserAssociated() async throws {
        try await NotificationReceiver.run { receiver in
            try await Env.run(configuration: Self.fast) { env in
                try await Self.subscribe(env, receiver, types: ["USER_ASSOCIATED"])
                _ = try await env.session.createUsers([RequestUser(clientUserId: "invited", email: "i@example.com")])
                _ = try await Self.control(
                    env,
                    .POST,
                    "/users/accept",
                    #"{"uId":"\#(env.uId)","clientUserId":"invited"}"#
                )
                #expect(await Self.delivered(env, .userAssociated, count: 1))
                let payloads = try receiver.payloads(.userAssociated, as: UserAssociatedNotification.self)
                let user = try #require(payloads.first?.associatedUsers.first)
                #expect(payloads.count == 1 && payloads.first?.associatedUsers.count == 1)
                #expect(user.clientUserId == "invited")
                #expect(user.email == "i@example.com")
                #expect(user.status == .associated)
                #expect(user.idHash?.isEmpty == false)
                #expect(user == (try env.simulator.core.users(uId: env.uId)).first { $0.clientUserId == "invited" })
            }
        }
    }

    @Test func purchasesAndRefundsSendAssetCount() async throws {
        try await NotificationReceiver.run { receiver in
            try await Env.run(configuration: Self.fast) { env in
                try await Self.subscribe(env, receiver)
                let uId = env.uId
                _ = try await Self.control(
                    env,
                    .POST,
                    "/purchases",
                    #"{"uId":"\#(uId)","adamId":"\#(Env.pages)","count":5}"#
                )
                #expect(await Self.delivered(env, .assetCount, count: 1))
                _ = try await Self.control(
                    env,
                    .POST,
                    "/refunds",
                    #"{"uId":"\#(uId)","adamId":"\#(Env.pages)","count":2}"#
                )
                #expect(await Self.delivered(env, .assetCount, count: 2))
                let payloads = try receiver.payloads(.assetCount, as: AssetCountNotification.self)
                #expect(
                    payloads == [
                        AssetCountNotification(adamId: Env.pages, pricingParam: .standard, countDelta: 5),
                        AssetCountNotification(adamId: Env.pages, pricingParam: .standard, countDelta: -2),
                    ]
                )
            }
        }
    }

    @Test func assignmentsAnotherPartyMakesAreNotifiedWithAnEventOfTheirOwn() async throws {
        try await NotificationReceiver.run { receiver in
            try await Env.run(configuration: Self.fast) { env in
                try await Self.subscribe(env, receiver, types: ["ASSET_MANAGEMENT"])
                try env.simulator.core.addAssignments(
                    uId: env.uId,
                    [Assignment(adamId: Env.pages, pricingParam: .standard, serialNumber: "ELSEWHERE")]
                )
                #expect(await Self.delivered(env, .assetManagement, count: 1))
                let payload = try #require(
                    try receiver.payloads(.assetManagement, as: AssetManagementNotification.self).first
                )
                #expect(payload.result == .success && payload.type == .associate && !payload.eventId.isEmpty)
                #expect(payload.assignments?.map(\.serialNumber) == ["ELSEWHERE"])
            }
        }
    }

    @Test func onlyTheSubscribedTypesAreSent() async throws {
        try await NotificationReceiver.run { receiver in
            try await Env.run(configuration: Self.fast) { env in
                try await Self.subscribe(env, receiver, types: ["ASSET_COUNT"])
                _ = try await env.session.createUsers([RequestUser(clientUserId: "unheard")])
                _ = try await env.session.associate(
                    ManageAssetsRequest(assets: [AssetReference(adamId: Env.pages)], serialNumbers: ["QUIET"])
                )
                try env.simulator.core.addPurchase(uId: env.uId, adamId: Env.pages, count: 1)
                #expect(await Self.delivered(env, .assetCount, count: 1))
                // Notifications are logged when produced: what is not in the log was never produced.
                let types = env.simulator.core.notificationLog().map(\.notificationType)
                #expect(types == [.test, .assetCount])
                #expect(receiver.all.compactMap(\.header?.notificationType) == [.test, .assetCount])
            }
        }
    }

    // MARK: Retries

    @Test func aNotificationAnswered500IsRetriedWithTheSameId() async throws {
        try await NotificationReceiver.run(statuses: [200, 500, 503]) { receiver in
            try await Env.run(configuration: Self.fast) { env in
                try await Self.subscribe(env, receiver)
                try env.simulator.core.addPurchase(uId: env.uId, adamId: Env.pages, count: 1)
                #expect(await Self.delivered(env, .assetCount, count: 1))
                let ids = receiver.bodies(.assetCount).compactMap { try? NotificationHeader.decode($0).notificationId }
                #expect(ids.count == 3)
                #expect(Set(ids).count == 1)
                let entry = try #require(env.simulator.core.notificationLog().last)
                #expect(entry.attempts == 3)
                #expect(entry.lastHTTPStatus == 200)
            }
        }
    }

    @Test func afterTheLastAttemptTheNotificationIsGiven() async throws {
        try await NotificationReceiver.run(statuses: [200, 500, 500, 500]) { receiver in
            try await Env.run(configuration: Self.fast) { env in
                try await Self.subscribe(env, receiver)
                try env.simulator.core.addPurchase(uId: env.uId, adamId: Env.pages, count: 1)
                #expect(
                    await eventually(timeout: .seconds(20)) {
                        env.simulator.core.notificationLog().last?.status == .failed
                    }
                )
                let entry = try #require(env.simulator.core.notificationLog().last)
                #expect(entry.attempts == 3)
                #expect(entry.lastHTTPStatus == 500)
                #expect(receiver.bodies(.assetCount).count == 3)
            }
        }
    }

    @Test func shutdownDropsWhatWaitsForARetry() async throws {
        let configuration = SimulatorConfiguration(
            eventCompletion: .immediately,
            notificationRetryDelays: [.seconds(600)]
        )
        try await NotificationReceiver.run(statuses: [200, 500]) { receiver in
            try await Env.run(configuration: configuration) { env in
                try await Self.subscribe(env, receiver)
                try env.simulator.core.addPurchase(uId: env.uId, adamId: Env.pages, count: 1)
                #expect(await eventually { env.simulator.core.notificationLog().last?.attempts == 1 })
                await env.simulator.core.shutdown()
                let entry = try #require(env.simulator.core.notificationLog().last)
                #expect(entry.status == .dropped)
                #expect(entry.attempts == 1)
            }
        }
    }

    // MARK: Faults

    @Test func dropFailAndDelayFaults() async throws {
        try await NotificationReceiver.run { receiver in
            try await Env.run(configuration: Self.fast) { env in
                try await Self.subscribe(env, receiver, types: ["ASSET_COUNT", "USER_MANAGEMENT"])
                let core = env.simulator.core
                // A type filter: the USER_MANAGEMENT notification passes, the ASSET_COUNT one is dropped.
                _ = try await Self.control(env, .POST, "/notification-faults", #"{"kind":"drop","type":"ASSET_COUNT"}"#)
                _ = try await env.session.createUsers([RequestUser(clientUserId: "fault-free")])
                try core.addPurchase(uId: env.uId, adamId: Env.pages, count: 1)
                #expect(await Self.delivered(env, .userManagement, count: 1))

                core.injectNotificationFault(NotificationFault(kind: .fail, count: 1, type: .assetCount))
                try core.addPurchase(uId: env.uId, adamId: Env.pages, count: 2)
                #expect(await Self.delivered(env, .assetCount, count: 1))

                core.injectNotificationFault(NotificationFault(kind: .delay, delayMilliseconds: 100))
                try core.addPurchase(uId: env.uId, adamId: Env.pages, count: 3)
                #expect(await Self.delivered(env, .assetCount, count: 2))

                let log = core.notificationLog().filter { $0.notificationType == .assetCount }
                #expect(log.map(\.status) == [.dropped, .delivered, .delivered])
                #expect(log.map(\.fault) == [.drop, .fail, .delay])
                #expect(log.map(\.attempts) == [0, 2, 1])
                let deltas = try receiver.payloads(.assetCount, as: AssetCountNotification.self).map(\.countDelta)
                #expect(deltas == [2, 3])
                #expect(core.pendingNotificationFaults().isEmpty)
            }
        }
    }

    @Test func duplicateAndReorderFaults() async throws {
        try await NotificationReceiver.run { receiver in
            try await Env.run(configuration: Self.fast) { env in
                try await Self.subscribe(env, receiver, types: ["ASSET_COUNT"])
                let core = env.simulator.core
                core.injectNotificationFault(NotificationFault(kind: .duplicate))
                try core.addPurchase(uId: env.uId, adamId: Env.pages, count: 1)
                #expect(await eventually { receiver.bodies(.assetCount).count == 2 })
                let ids = receiver.bodies(.assetCount).compactMap { try? NotificationHeader.decode($0).notificationId }
                #expect(ids.count == 2 && Set(ids).count == 1)

                _ = try await Self.control(env, .POST, "/notification-faults", #"{"kind":"reorder","count":3}"#)
                for count in 10...12 { try core.addPurchase(uId: env.uId, adamId: Env.pages, count: count) }
                #expect(await Self.delivered(env, .assetCount, count: 4))
                let deltas = try receiver.payloads(.assetCount, as: AssetCountNotification.self).map(\.countDelta)
                #expect(deltas == [1, 1, 12, 11, 10])
                #expect(core.notificationLog().suffix(3).allSatisfy { $0.fault == .reorder })
                _ = try await Self.control(env, .DELETE, "/notification-faults")
            }
        }
    }

    @Test func aDropFaultOnTheTestNotificationRefusesTheConfig() async throws {
        try await NotificationReceiver.run { receiver in
            try await Env.run(configuration: Self.fast) { env in
                env.simulator.core.injectNotificationFault(NotificationFault(kind: .drop, type: .test))
                let error = await appleError { try await Self.subscribe(env, receiver) }
                #expect(error?.errorNumber == 9728)
                #expect(receiver.all.isEmpty)
                try await Self.subscribe(env, receiver)
                #expect(receiver.all.count == 1)
            }
        }
    }

    // MARK: The rival MDM and the control API

    @Test func aRivalMDMRepointsNotificationsSilently() async throws {
        try await NotificationReceiver.run { ours in
            try await NotificationReceiver.run { theirs in
                try await Env.run(configuration: Self.fast) { env in
                    try await Self.subscribe(env, ours)
                    _ = try await Self.control(
                        env,
                        .POST,
                        "/client-config",
                        #"""
                        {"uId":"\#(env.uId)","mdmInfo":{"id":"rival","name":"Rival MDM","metadata":"2"},
                         "notificationUrl":"\#(theirs.url)","notificationAuthToken":"theirs"}
                        """#
                    )
                    #expect(theirs.all.isEmpty, "Apple sends no TEST_NOTIFICATION for another MDM's change")
                    #expect(ours.all.count == 1, "and tells the MDM that lost the token nothing")
                    let config = try await env.session.clientConfig()
                    #expect(config.mdmInfo?.id == "rival")
                    #expect(config.notificationUrl == theirs.url)
                    #expect(config.notificationAuthToken == "theirs")

                    try env.simulator.core.addPurchase(uId: env.uId, adamId: Env.pages, count: 1)
                    #expect(await Self.delivered(env, .assetCount, count: 1))
                    #expect(theirs.all.first?.authorization == "Bearer theirs")
                    #expect(ours.all.count == 1)

                    try env.simulator.core.setClientConfig(uId: env.uId, notificationUrl: ours.url)
                    #expect(try await env.session.clientConfig().notificationUrl == ours.url)
                    #expect(try await env.session.clientConfig().mdmInfo?.id == "rival", "nil leaves mdmInfo")
                }
            }
        }
    }

    @Test func theDeliveryLogOverTheControlAPI() async throws {
        try await NotificationReceiver.run { receiver in
            try await Env.run(configuration: Self.fast) { env in
                try await Self.subscribe(env, receiver)
                try env.simulator.core.addPurchase(uId: env.uId, adamId: Env.pages, count: 7)
                #expect(await Self.delivered(env, .assetCount, count: 1))
                let data = try await Self.control(env, .GET, "/notifications?uId=\(env.uId)")
                let log = try JSONDecoder().decode([SimulatedNotification].self, from: data)
                #expect(log.map(\.notificationType) == [.test, .assetCount])
                let entry = try #require(log.last)
                #expect(entry.uId == env.uId && entry.url == receiver.url && entry.status == .delivered)
                #expect(entry.attempts == 1 && entry.lastHTTPStatus == 200)
                #expect(try entry.envelope(AssetCountNotification.self).notification.countDelta == 7)
                let other = try await Self.control(env, .GET, "/notifications?uId=nobody")
                #expect(try JSONDecoder().decode([SimulatedNotification].self, from: other).isEmpty)
                _ = try await Self.control(env, .DELETE, "/notifications")
                #expect(env.simulator.core.notificationLog().isEmpty)
            }
        }
    }
}
