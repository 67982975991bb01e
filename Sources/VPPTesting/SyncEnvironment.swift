public import AppleVPP
public import AppleVPPSimulator
import Foundation
import Logging
public import VPPClient
public import VPPProto
public import VPPServices
import VPPWire

/// A simulator of Apple, a server that talks to it, and helpers to upload tokens and follow their syncs: what the
/// token, sync and ledger tests run on.
public struct SyncEnvironment: Sendable {
    public let simulator: AppleVPPSimulator
    public let server: TestVPPServer

    public var core: SimulatorCore { simulator.core }
    public var sync: SyncSystem { server.sync! }

    public static let pages = "408709785"
    public static let book = "1000000001"
    public static let customApp = "1000000002"
    public static let freeApp = "1000000003"

    public static let publicApps = [
        ContentMetadata(trackId: 408_709_785, trackName: "Pages", bundleId: "com.apple.Pages", kind: "software"),
        ContentMetadata(trackId: 1_000_000_003, trackName: "Free App", bundleId: "com.example.free", kind: "software"),
        ContentMetadata(trackId: 1_000_000_001, trackName: "A Book", kind: "ebook"),
    ]

    /// A location like a school's: an app, a book, a custom B2B app (R9), a free app, and a user and a license that
    /// another MDM made (R10).
    public static func location(
        uId: String = "\(UInt64.random(in: 1_000_000_000...9_999_999_999))",
        name: String = "Springfield High"
    )
        -> SimulatorFixture.Location
    {
        .init(
            uId: uId,
            locationName: name,
            orgName: "ORG \(name)",
            assets: [
                .init(adamId: pages, productType: .app, totalCount: 10),
                .init(adamId: book, productType: .book, totalCount: 5),
                .init(adamId: customApp, productType: .app, totalCount: 3),
                .init(adamId: freeApp, productType: .app, unlimited: true),
            ],
            users: [.init(clientUserId: "other-mdm-user", email: "someone@example.com", status: .associated)],
            assignments: [Assignment(adamId: pages, pricingParam: .standard, clientUserId: "other-mdm-user")]
        )
    }

    public static func run<T: Sendable>(
        workers: Int = 2,
        scheduleInterval: Duration = .seconds(12 * 3600),
        schedulerTick: Duration? = .milliseconds(500),
        lease: Duration = .seconds(30),
        simulator configuration: SimulatorConfiguration = .init(),
        notifications: Bool = false,
        eventPollInterval: Duration = .milliseconds(50),
        notifiedPollInterval: Duration = .seconds(300),
        _ body: (SyncEnvironment) async throws -> T
    ) async throws -> T {
        var logger = Logger(label: "test.simulator")
        logger.logLevel = .critical
        return try await AppleVPPSimulator.withSimulator(
            configuration: configuration,
            fixture: SimulatorFixture(publicApps: publicApps, locations: []),
            logger: logger
        ) { simulator in
            let server = try await TestVPPServer.start(
                prefix: "sync",
                apple: TestAppleOptions(
                    baseURL: simulator.baseURL,
                    workers: workers,
                    scheduleInterval: scheduleInterval,
                    schedulerTick: schedulerTick,
                    lease: lease,
                    notifications: notifications,
                    eventPollInterval: eventPollInterval,
                    notifiedPollInterval: notifiedPollInterval
                )
            )
            do {
                let result = try await body(SyncEnvironment(simulator: simulator, server: server))
                await server.stop()
                return result
            } catch {
                await server.stop()
                throw error
            }
        }
    }

    /// A new location at the simulator; returns its uId and token file.
    public func newLocation(_ name: String = "Springfield High") throws -> (uId: String, file: String) {
        let created = try core.createLocation(Self.location(name: name))
        return (created.uId, created.vppToken)
    }

    /// A tenant and a client with its key.
    public func tenant(_ name: String = "Tenant", configure: (inout VppV1.CreateTenantRequest) -> Void = { _ in })
        async throws
        -> (tenant: VppV1.Tenant, client: VPPClient)
    {
        let (tenant, key) = try await server.createTenant(name, configure: configure)
        return (tenant, server.client(key: key))
    }

    public static func uploadRequest(_ file: String, appleID: String = "vpp-admin@example.com", takeOver: Bool = false)
        -> VppV1.UploadTokenRequest
    {
        VppV1.UploadTokenRequest(
            tokenFile: Array(file.utf8),
            appleId: appleID,
            accountType: .education,
            takeOver: takeOver
        )
    }

    public func upload(_ client: VPPClient, _ file: String, takeOver: Bool = false) async throws
        -> VppV1.UploadTokenResponse
    {
        try await client.call(VppV1.TokenService.UploadToken.self, Self.uploadRequest(file, takeOver: takeOver))
    }

    /// Follows a job with WatchSyncJob until it ends; returns every update seen.
    public func watch(_ client: VPPClient, jobID: String) async throws -> [VppV1.SyncJob] {
        let request = VppV1.WatchSyncJobRequest(jobId: jobID)
        var updates: [VppV1.SyncJob] = []
        for try await job in client.stream(VppV1.SyncService.WatchSyncJob.self, request, timeout: .seconds(60)) {
            updates.append(job)
        }
        return updates
    }

    /// Polls a job until `predicate` holds (or the time limit ends).
    public func waitForJob(
        _ client: VPPClient,
        jobID: String,
        timeout: Duration = .seconds(30),
        until predicate: (VppV1.SyncJob) -> Bool
    ) async throws -> VppV1.SyncJob {
        let request = VppV1.GetSyncJobRequest(jobId: jobID)
        let deadline = ContinuousClock.now + timeout
        while true {
            let job = try await client.call(VppV1.SyncService.GetSyncJob.self, request)
            if predicate(job) { return job }
            guard ContinuousClock.now < deadline else {
                throw SyncEnvironmentTimeout(
                    description: "job \(jobID) did not reach the expected state; last: \(job.state) \(job.error)"
                )
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    public func getToken(_ client: VPPClient, _ id: String) async throws -> VppV1.Token {
        return try await client.call(VppV1.TokenService.GetToken.self, VppV1.GetTokenRequest(tokenId: id))
    }

    public func syncNow(_ client: VPPClient, _ tokenID: String, full: Bool = false) async throws -> VppV1.SyncJob {
        return try await client.call(
            VppV1.SyncService.SyncToken.self,
            VppV1.SyncTokenRequest(tokenId: tokenID, full: full)
        )
    }

    public func apps(_ client: VPPClient, tokenID: String = "") async throws -> [VppV1.Asset] {
        return try await client.call(VppV1.CatalogService.ListApps.self, VppV1.ListAssetsRequest(tokenId: tokenID))
            .assets
    }
}

/// `waitForJob` gave up: the job never reached the state the test waited for.
public struct SyncEnvironmentTimeout: Error, CustomStringConvertible {
    public var description: String
}

extension VppV1.SyncJob {
    /// Queued, running or waiting to retry: not finished.
    public var isActive: Bool { self.state == .queued || self.state == .running || self.state == .retrying }
}
