import AppleVPP
import AppleVPPSimulator
import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing

@Suite("AppleVPPClient against the in-process simulator")
struct ClientAgainstSimulatorTests {
    typealias Env = SimulatorEnvironment

    // MARK: Service and client config

    @Test func serviceConfigHasLimitsAndURLsOfTheSimulatorItself() async throws {
        try await Env.run { env in
            let config = try await env.client.serviceConfig()
            #expect(config.limits["maxAssets"] == 25)
            #expect(config.serviceLimits.maxRevokeSerialNumbers == 100)
            #expect(config.urls[ServiceURLKey.getAssignments] == env.simulator.baseURL + "/assignments")
            #expect(config.urls[ServiceURLKey.invitationEmail]?.contains("inviteCode=%25inviteCode%25") == true)
            #expect(config.errorCodes?.contains { $0.errorNumber == 9709 } == true)
            // Cached: a second read does not ask again.
            _ = try await env.client.serviceConfig()
            #expect(env.simulator.core.recordedRequests().filter { $0.path == "/service/config" }.count == 1)
        }
    }

    @Test func clientConfigAndClaimingTheToken() async throws {
        try await Env.run { env in
            let before = try await env.session.clientConfig()
            #expect(before.locationName == "Springfield High")
            #expect(before.uId == Env.uId)
            #expect(before.mdmInfo == nil)
            #expect(before.tokenExpirationDate != nil)
            let ours = MDMInfo(id: "f3a9c2d0-1111-4222-8333-944455556666", name: "VPP License Server", metadata: "1.0")
            let after = try await env.session.claim(ours)
            #expect(after.mdmInfo == ours)
            #expect(try await env.session.clientConfig().mdmInfo == ours)

            let incomplete = await appleError { try await env.session.claim(MDMInfo(id: "x", name: "", metadata: "1")) }
            #expect(incomplete?.errorNumber == 9723 && incomplete?.httpStatus == 400)
            let tooLong = await appleError {
                try await env.session.claim(MDMInfo(id: String(repeating: "a", count: 101), name: "n", metadata: "m"))
            }
            #expect(tooLong?.errorNumber == 9724)
            let halfNotification = await appleError {
                try await env.session.setClientConfig(ClientConfigRequest(notificationUrl: "https://example.com/n"))
            }
            #expect(halfNotification?.errorNumber == 9710)
        }
    }

    @Test func noticesAnotherMDMTakingTheToken() async throws {
        let ours = MDMInfo(id: "ours", name: "VPP License Server", metadata: "1.0")
        let observed = NIOLockedValueBox<[MDMInfo?]>([])
        let mismatch: @Sendable (MDMInfo?) -> Void = { info in observed.withLockedValue { $0.append(info) } }
        try await Env.run(ownMDMInfo: ours, onMDMInfoMismatch: mismatch) { env in
            _ = try await env.session.claim(ours)
            _ = try await env.session.assets()
            #expect(observed.withLockedValue { $0 }.isEmpty)

            let thief = MDMInfo(id: "other", name: "Other MDM", metadata: "9")
            try env.simulator.core.setMDMInfo(uId: env.uId, thief)
            let page = try await env.session.assignments()
            #expect(page.mdmInfo == thief)
            #expect(observed.withLockedValue { $0 } == [thief])
        }
    }

    // MARK: Token errors

    @Test func expiredTokenIs9621AndNotRetried() async throws {
        try await Env.run { env in
            try env.simulator.core.expireToken(env.vppToken)
            let error = await appleError { try await env.session.clientConfig() }
            #expect(error?.errorNumber == 9621)
            #expect(error?.httpStatus == 401)
            #expect(error?.isTokenDead == true)
            #expect(env.simulator.core.recordedRequests().filter { $0.path == "/client/config" }.count == 1)
        }
    }

    @Test func revokedTokenIs9625AndNotRetried() async throws {
        try await Env.run { env in
            try env.simulator.core.revokeToken(env.vppToken)
            let error = await appleError { try await env.session.assets() }
            #expect(error?.errorNumber == 9625)
            #expect(error?.httpStatus == 401)
            #expect(error?.isTokenDead == true)
            #expect(env.simulator.core.recordedRequests().filter { $0.path == "/assets" }.count == 1)
        }
    }

    @Test func unknownTokenIs9622InsideAn200Answer() async throws {
        try await Env.run { env in
            let stranger = Data(#"{"token":"nope","expDate":"2099-01-01T00:00:00+0000","orgName":"X"}"#.utf8)
                .base64EncodedString()
            let session = env.client.session(token: try ServiceToken(fileContents: stranger, now: Date()))
            let error = await appleError { try await session.clientConfig() }
            #expect(error?.errorNumber == 9622)
            #expect(error?.httpStatus == 200)
            #expect(error?.isTokenDead == true)
            #expect(env.simulator.core.recordedRequests().filter { $0.path == "/client/config" }.count == 1)
        }
    }

    @Test func malformedAuthorizationHeaderIs9722() async throws {
        try await Env.run { env in
            var request = HTTPClientRequest(url: env.simulator.baseURL + "/client/config")
            request.headers.add(name: "Authorization", value: "Token " + env.vppToken)
            let response = try await env.httpClient.execute(request, timeout: .seconds(5))
            let body = try await response.body.collect(upTo: 1 << 16)
            let error = try JSONDecoder().decode(ErrorResponse.self, from: Data(buffer: body))
            #expect(response.status.code == 401)
            #expect(error.errorNumber == 9722)
        }
    }

    @Test func anErrorInAn200AnswerIsCaughtForAnyEndpoint() async throws {
        try await Env.run { env in
            env.simulator.core.injectFault(SimulatorFault(kind: .errorIn200, errorNumber: 9602, pathSuffix: "/users"))
            let error = await appleError { try await env.session.users() }
            #expect(error?.errorNumber == 9602 && error?.httpStatus == 200 && error?.kind == .api)
        }
    }

    @Test func aFaultForOneMethodLeavesTheOtherOnTheSamePathAlone() async throws {
        try await Env.run { env in
            // Reading the client config (GET) and claiming the token (POST) share a path.
            env.simulator.core.injectFault(
                SimulatorFault(kind: .internalError, pathSuffix: "/client/config", method: "post")
            )
            _ = try await env.session.clientConfig()
            #expect(env.simulator.core.pendingFaults().count == 1)
            _ = try await env.session.claim(MDMInfo(id: "ours", name: "Ours", metadata: "1"))  // retried after the 500
            #expect(env.simulator.core.pendingFaults().isEmpty)
            let seen = env.simulator.core.recordedRequests().filter { $0.path.hasSuffix("/client/config") }
            #expect(seen.map(\.method) == ["GET", "POST", "POST"])
            #expect(seen.map(\.fault) == [nil, .internalError, nil])
        }
    }

    // MARK: Assets

    @Test func assetsWithFiltersAndUnlimitedApps() async throws {
        try await Env.run { env in
            let all = try await env.session.allAssets()
            #expect(all.items.count == 4)
            let free = all.items.first { $0.adamId == Env.freeApp }
            #expect(free?.isUnlimited == true)
            #expect(all.items.first { $0.adamId == Env.pages }?.assignedCount == 1)

            let books = try await env.session.assets(filter: AssetFilter(productType: .book))
            #expect(books.assets?.map(\.adamId) == [Env.book])
            #expect(books.assets?.first?.revocable == false)
            let unlimited = try await env.session.assets(filter: AssetFilter(unlimited: true))
            #expect(unlimited.assets == nil)
            #expect(unlimited.unlimitedAssets?.map(\.adamId) == [Env.freeApp])
            let limited = try await env.session.assets(filter: AssetFilter(unlimited: false))
            #expect(limited.assets?.count == 3)
            let plenty = try await env.session.assets(filter: AssetFilter(minAvailableCount: 6, unlimited: false))
            #expect(plenty.assets?.map(\.adamId) == [Env.pages])
            #expect(plenty.versionId != nil && plenty.currentPageIndex == 0 && plenty.totalPages == 1)
            #expect(plenty.nextPageIndex == nil)
        }
    }

    // MARK: Associate, disassociate, revoke

    @Test func associateIsAsynchronousAndMovesTheCounts() async throws {
        try await Env.run { env in
            let event = try await env.session.associate(
                ManageAssetsRequest(assets: [AssetReference(adamId: Env.pages)], serialNumbers: ["C02A", "C02B"])
            )
            #expect(event.uId == Env.uId)
            #expect(try await env.asset(Env.pages).assignedCount == 1)
            let first = try await env.session.eventStatus(event.eventId)
            #expect(first.eventStatus == .pending)
            let status = try await env.finish(event)
            #expect(status.eventStatus == .complete && status.eventType == .associate)
            #expect(status.numRequested == 2 && status.numCompleted == 2)
            let pages = try await env.asset(Env.pages)
            #expect(pages.assignedCount == 3 && pages.availableCount == 7)

            let assigned = try await env.session.allAssignments(filter: AssignmentFilter(serialNumber: "C02A"))
            #expect(assigned.items == [Assignment(adamId: Env.pages, pricingParam: .standard, serialNumber: "C02A")])

            let gone = try await env.finish(
                try await env.session.disassociate(
                    ManageAssetsRequest(assets: [AssetReference(adamId: Env.pages)], serialNumbers: ["C02A"])
                )
            )
            #expect(gone.eventStatus == .complete && gone.eventType == .disassociate)
            #expect(try await env.asset(Env.pages).assignedCount == 2)
        }
    }

    @Test func runningOutOfLicensesFailsPerItemWith9709() async throws {
        try await Env.run { env in
            let serials = (1...5).map { "DEV\($0)" }
            let status = try await env.finish(
                try await env.session.associate(
                    ManageAssetsRequest(assets: [AssetReference(adamId: Env.customApp)], serialNumbers: serials)
                )
            )
            #expect(status.eventStatus == .failed)
            #expect(status.numRequested == 5 && status.numCompleted == 3)
            let failure = try #require(status.failures?.first)
            #expect(failure.errorNumber == 9709)
            #expect(failure.errorInfo?.serialNumbers == ["DEV4", "DEV5"])
            #expect(failure.errorInfo?.assets == [AssetReference(adamId: Env.customApp, pricingParam: .standard)])
            let asset = try await env.asset(Env.customApp)
            #expect(asset.assignedCount == 3 && asset.availableCount == 0)

            // Unlimited apps never run out.
            let free = try await env.finish(
                try await env.session.associate(
                    ManageAssetsRequest(
                        assets: [AssetReference(adamId: Env.freeApp)],
                        serialNumbers: (1...50).map { "F\($0)" }
                    )
                )
            )
            #expect(free.eventStatus == .complete && free.numCompleted == 50)
        }
    }

    @Test func aRefundLowersTheCountRevokesNothingAndRefusesNewAssociations() async throws {
        try await Env.run { env in
            _ = try await env.finish(
                try await env.session.associate(
                    ManageAssetsRequest(
                        assets: [AssetReference(adamId: Env.customApp)],
                        serialNumbers: ["R1", "R2", "R3"]
                    )
                )
            )
            // Through the control API, as the local run and the docs use it.
            func refund(_ body: String) -> SimulatorResponse {
                env.simulator.core.handleControl(method: "POST", path: "/refunds", body: Data(body.utf8))
            }
            #expect(refund(#"{"uId": "\#(env.uId)", "adamId": "\#(Env.customApp)", "count": 2}"#).status == 200)
            var asset = try await env.asset(Env.customApp)
            #expect(asset.totalCount == 1)
            #expect(asset.assignedCount == 3, "a refund revokes nothing: the assignments stay")
            #expect(asset.availableCount == 0)
            let refused = try await env.finish(
                try await env.session.associate(
                    ManageAssetsRequest(assets: [AssetReference(adamId: Env.customApp)], serialNumbers: ["R4"])
                )
            )
            #expect(refused.failures?.first?.errorNumber == 9709)

            // Seats given back: still over (3 held of 1) until two go, then one is free again.
            _ = try await env.finish(
                try await env.session.disassociate(
                    ManageAssetsRequest(
                        assets: [AssetReference(adamId: Env.customApp)],
                        serialNumbers: ["R1", "R2", "R3"]
                    )
                )
            )
            asset = try await env.asset(Env.customApp)
            #expect(asset.assignedCount == 0 && asset.availableCount == 1)

            // Refused: more than it has, a free app, an asset it does not own, a bad body.
            #expect(refund(#"{"uId": "\#(env.uId)", "adamId": "\#(Env.customApp)", "count": 2}"#).status == 400)
            #expect(refund(#"{"uId": "\#(env.uId)", "adamId": "\#(Env.freeApp)", "count": 1}"#).status == 400)
            #expect(refund(#"{"uId": "\#(env.uId)", "adamId": "999", "count": 1}"#).status == 400)
            #expect(refund(#"{"uId": "\#(env.uId)", "adamId": "\#(Env.customApp)", "count": 0}"#).status == 400)
            #expect(refund(#"{"uId": "\#(env.uId)"}"#).status == 400)
            #expect(try await env.asset(Env.customApp).totalCount == 1)
        }
    }

    @Test func synchronousValidationErrors() async throws {
        try await Env.run { env in
            let s = env.session
            let noAssets = await appleError {
                try await s.associate(ManageAssetsRequest(assets: [], serialNumbers: ["x"]))
            }
            #expect(noAssets?.errorNumber == 9718 && noAssets?.httpStatus == 400 && noAssets?.isRetryable == false)
            let noSubjects = await appleError {
                try await s.associate(ManageAssetsRequest(assets: [AssetReference(adamId: Env.pages)]))
            }
            #expect(noSubjects?.errorNumber == 9719)
            let bookToDevice = await appleError {
                try await s.associate(
                    ManageAssetsRequest(assets: [AssetReference(adamId: Env.book)], serialNumbers: ["x"])
                )
            }
            #expect(bookToDevice?.errorNumber == 9707)
            let bookBack = await appleError {
                try await s.disassociate(
                    ManageAssetsRequest(assets: [AssetReference(adamId: Env.book)], clientUserIds: ["u"])
                )
            }
            #expect(bookBack?.errorNumber == 9706)
            let duplicates = await appleError {
                try await s.associate(
                    ManageAssetsRequest(assets: [AssetReference(adamId: Env.pages)], serialNumbers: ["x", "x"])
                )
            }
            #expect(duplicates?.errorNumber == 9705)
            let tooMany = await appleError {
                try await s.associate(
                    ManageAssetsRequest(
                        assets: (0..<26).map { AssetReference(adamId: "\($0)") },
                        serialNumbers: ["x"]
                    )
                )
            }
            #expect(tooMany?.errorNumber == 9700)
            let unknownEvent = await appleError { try await s.eventStatus("no-such-event") }
            #expect(unknownEvent?.errorNumber == 9708)
            let badPage = await appleError { try await s.assignments(pageIndex: 7) }
            #expect(badPage?.errorNumber == 9650)
            let badVersion = await appleError { try await s.assignments(sinceVersionId: "999999") }
            #expect(badVersion?.errorNumber == 9721)
        }
    }

    @Test func revokeTakesEveryRevocableLicenseOfAUser() async throws {
        try await Env.run { env in
            _ = try await env.finish(try await env.session.createUsers([RequestUser(clientUserId: "reader")])[0])
            _ = try await env.finish(
                try await env.session.associate(
                    ManageAssetsRequest(
                        assets: [AssetReference(adamId: Env.pages), AssetReference(adamId: Env.book)],
                        clientUserIds: ["reader"]
                    )
                )
            )
            #expect(
                try await env.session.allAssignments(filter: AssignmentFilter(clientUserId: "reader")).items.count == 2
            )
            let events = try await env.session.revokeInBatches(clientUserIds: ["reader"])
            #expect(try await env.finish(events[0]).eventType == .revoke)
            let left = try await env.session.allAssignments(filter: AssignmentFilter(clientUserId: "reader")).items
            #expect(left.map(\.adamId) == [Env.book])  // books are not revocable
        }
    }

    // MARK: Users

    @Test func userLifecycleFromInvitationToRetirement() async throws {
        try await Env.run { env in
            let created = try await env.session.createUsers([
                RequestUser(clientUserId: "alice", email: "alice@example.com"),
                RequestUser(clientUserId: "bob", email: "bob@example.com", managedAppleId: "bob@school.example"),
            ])
            #expect(try await env.finish(created[0]).eventStatus == .complete)
            var alice = try #require(
                try await env.session.users(filter: UserFilter(clientUserId: "alice")).users?.first
            )
            #expect(alice.status == .registered && alice.inviteCode != nil && alice.idHash == nil)
            let bob = try await env.session.users(filter: UserFilter(clientUserId: "bob")).users?.first
            #expect(bob?.status == .associated && bob?.idHash != nil)

            try env.simulator.core.acceptInvitation(uId: env.uId, clientUserId: "alice")
            alice = try #require(try await env.session.users(filter: UserFilter(clientUserId: "alice")).users?.first)
            #expect(alice.status == .associated && alice.idHash != nil && alice.inviteCode == nil)

            let versionBefore = try await env.session.users().versionId
            _ = try await env.finish(
                try await env.session.updateUsers([RequestUser(clientUserId: "alice", email: "a@example.com")])[0]
            )
            let changed = try await env.session.allUsers(sinceVersionId: versionBefore)
            #expect(changed.items.map(\.clientUserId) == ["alice"])
            #expect(changed.items.first?.email == "a@example.com")

            _ = try await env.finish(
                try await env.session.associate(
                    ManageAssetsRequest(assets: [AssetReference(adamId: Env.pages)], clientUserIds: ["alice"])
                )
            )
            #expect(try await env.asset(Env.pages).assignedCount == 2)
            _ = try await env.finish(try await env.session.retireUsers(clientUserIds: ["alice"])[0])
            #expect(try await env.asset(Env.pages).assignedCount == 1)  // retiring released the license
            let retired = try await env.session.allUsers(filter: UserFilter(retiredOnly: true)).items
            #expect(retired.map(\.clientUserId) == ["alice"])
            let active = try await env.session.allUsers(filter: UserFilter(activeOnly: true)).items
            #expect(Set(active.map(\.clientUserId)) == ["bob", "other-mdm-user"])
        }
    }

    @Test func creatingAnExistingUserFailsAsynchronouslyWith9716AndBadEmailsSynchronously() async throws {
        try await Env.run { env in
            let status = try await env.finish(
                try await env.session.createUsers([RequestUser(clientUserId: "other-mdm-user")])[0]
            )
            #expect(status.eventStatus == .failed)
            #expect(status.failures?.first?.errorNumber == 9716)
            let badEmail = await appleError {
                try await env.session.createUsers([RequestUser(clientUserId: "x", email: "not an email")])
            }
            #expect(badEmail?.errorNumber == 9717)
            let none = await appleError { try await env.session.retireUsers(clientUserIds: []) }
            #expect(none == nil)  // nothing to send: no request at all
        }
    }

    // MARK: Content metadata

    @Test func contentLookupKnowsPublicAppsButNotCustomB2BApps() async throws {
        try await Env.run { env in
            let results = try await env.client.lookupContentMetadata(adamIds: [Env.pages, Env.customApp, Env.book])
            #expect(Set(results.map(\.adamId)) == [Env.pages, Env.book])
            #expect(results.first { $0.adamId == Env.pages }?.bundleId == "com.apple.Pages")
        }
    }
}
