import AppleVPP
import AppleVPPSimulator
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore

/// A simulator on a free port, a client pointed at it and a session with the fixture location's token.
struct SimulatorEnvironment {
    let simulator: AppleVPPSimulator
    let client: AppleVPPClient
    let session: AppleVPPSession
    let uId: String
    let vppToken: String
    let httpClient: HTTPClient

    static let uId = "2049025000431439"
    static let pages = "408709785"
    static let book = "1000000001"
    static let customApp = "1000000002"
    static let freeApp = "1000000003"

    static let fixture = SimulatorFixture(
        publicApps: [
            ContentMetadata(trackId: 408_709_785, trackName: "Pages", bundleId: "com.apple.Pages", kind: "software"),
            ContentMetadata(
                trackId: 1_000_000_003,
                trackName: "Free App",
                bundleId: "com.example.free",
                kind: "software"
            ),
            ContentMetadata(trackId: 1_000_000_001, trackName: "A Book", kind: "ebook"),
        ],
        locations: [
            .init(
                uId: uId,
                locationName: "Springfield High",
                orgName: "ORG12345",
                assets: [
                    .init(adamId: pages, productType: .app, totalCount: 10),
                    .init(adamId: book, productType: .book, totalCount: 5),
                    .init(adamId: customApp, productType: .app, totalCount: 3),
                    .init(adamId: freeApp, productType: .app, unlimited: true),
                ],
                users: [.init(clientUserId: "other-mdm-user", email: "someone@example.com", status: .associated)],
                assignments: [Assignment(adamId: pages, pricingParam: .standard, clientUserId: "other-mdm-user")]
            )
        ]
    )

    static func fastRetries(maxAttempts: Int = 4) -> RetryPolicy {
        RetryPolicy(maxAttempts: maxAttempts, baseDelay: .milliseconds(20), maxDelay: .milliseconds(200))
    }

    static func run<T: Sendable>(
        configuration: SimulatorConfiguration = .init(),
        fixture: SimulatorFixture = SimulatorEnvironment.fixture,
        retryPolicy: RetryPolicy = fastRetries(),
        ownMDMInfo: MDMInfo? = nil,
        onMDMInfoMismatch: (@Sendable (MDMInfo?) -> Void)? = nil,
        _ body: (SimulatorEnvironment) async throws -> T
    ) async throws -> T {
        let httpClient = HTTPClient(eventLoopGroupProvider: .singleton)
        var logger = Logger(label: "apple-vpp-test")
        logger.logLevel = .warning
        do {
            let result = try await AppleVPPSimulator.withSimulator(configuration: configuration, logger: logger) {
                simulator in
                let created = try simulator.core.load(fixture)
                let client = AppleVPPClient(
                    httpClient: httpClient,
                    configuration: .init(baseURL: simulator.baseURL, retryPolicy: retryPolicy),
                    logger: logger
                )
                let token = try ServiceToken(fileContents: created[0].vppToken, now: Date())
                let environment = SimulatorEnvironment(
                    simulator: simulator,
                    client: client,
                    session: client.session(token: token, ownMDMInfo: ownMDMInfo, onMDMInfoMismatch: onMDMInfoMismatch),
                    uId: created[0].uId,
                    vppToken: created[0].vppToken,
                    httpClient: httpClient
                )
                return try await body(environment)
            }
            try await httpClient.shutdown()
            return result
        } catch {
            try? await httpClient.shutdown()
            throw error
        }
    }

    /// Waits for an event with short polls (the simulator completes it after the first poll).
    func finish(_ event: EventResponse) async throws -> StatusResponse {
        try await session.waitForEvent(event.eventId, pollInterval: .milliseconds(10), timeout: .seconds(10))
    }

    func asset(_ adamId: String) async throws -> ResponseAsset {
        let page = try await session.assets(filter: AssetFilter(adamId: adamId))
        guard let asset = page.assets?.first else { throw TestFailure("no asset \(adamId)") }
        return asset
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` and returns the `AppleVPPError` it throws (or fails).
func appleError(_ body: () async throws -> some Any) async -> AppleVPPError? {
    do {
        _ = try await body()
        return nil
    } catch let error as AppleVPPError {
        return error
    } catch let error as AppleVPPBatchError {
        return error.error
    } catch {
        return nil
    }
}

enum HTTPClientRequestBuilder {
    static func post(_ url: String, _ json: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: json))
        return request
    }
}
