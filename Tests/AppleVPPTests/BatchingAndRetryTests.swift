import AppleVPP
import Testing

@Suite("Batching and retry policy (no I/O)")
struct BatchingAndRetryTests {
    let limits = ServiceLimits([
        "maxAssets": 3, "maxClientUserIds": 4, "maxSerialNumbers": 5, "maxRevokeClientUserIds": 2,
        "maxRevokeSerialNumbers": 2, "maxUsers": 3,
    ])

    @Test func associateRequestsStayWithinEveryLimitAndCoverTheCrossProduct() {
        let assets = (0..<7).map { AssetReference(adamId: "\($0)") }
        let users = (0..<9).map { "u\($0)" }
        let serials = (0..<11).map { "s\($0)" } + ["s0"]
        let requests = AppleVPPBatching.manageAssetsRequests(
            assets: assets,
            clientUserIds: users,
            serialNumbers: serials,
            limits: limits
        )
        var pairs = Set<String>()
        for request in requests {
            #expect(request.assets.count <= 3)
            #expect((request.clientUserIds ?? []).count <= 4)
            #expect((request.serialNumbers ?? []).count <= 5)
            #expect(request.clientUserIds == nil || request.serialNumbers == nil)
            for asset in request.assets {
                for subject in (request.clientUserIds ?? []) + (request.serialNumbers ?? []) {
                    #expect(pairs.insert("\(asset.adamId)/\(subject)").inserted)
                }
            }
        }
        #expect(pairs.count == 7 * (9 + 11))
        #expect(requests.count == 3 * (3 + 3))
    }

    @Test func revokeAndUserRequestsStayWithinTheirLimits() {
        let revokes = AppleVPPBatching.revokeRequests(
            clientUserIds: ["a", "b", "c"],
            serialNumbers: ["1", "2", "3", "4", "5"],
            limits: limits
        )
        #expect(revokes.count == 2 + 3)
        #expect(revokes.allSatisfy { ($0.clientUserIds ?? []).count <= 2 && ($0.serialNumbers ?? []).count <= 2 })
        let users = (0..<8).map { RequestUser(clientUserId: "u\($0 % 7)", email: "\($0)@example.com") }
        let batches = AppleVPPBatching.manageUsersRequests(users: users, limits: limits)
        #expect(batches.map(\.users.count) == [3, 3, 1])
        // The later edit of u0 wins.
        #expect(batches.flatMap(\.users).first { $0.clientUserId == "u0" }?.email == "7@example.com")
    }

    @Test func limitsFallBackToDocumentedValuesAndIgnoreNonsense() {
        let limits = ServiceLimits(["maxAssets": 0, "maxUsers": -1])
        #expect(limits.maxAssets == 25)
        #expect(limits.maxUsers == 100)
        #expect(limits.maxSerialNumbers == 1000)
    }

    @Test func tokenErrorsAndOther4xxAreNeverRetried() {
        let policy = RetryPolicy(maxAttempts: 5)
        for number in [9621, 9622, 9625] {
            let error = AppleVPPError(kind: .api, errorNumber: number, httpStatus: 401, message: "")
            #expect(error.isTokenDead)
            #expect(!error.isRetryable)
            #expect(policy.delay(afterAttempt: 1, error: error) == nil)
        }
        let validation = AppleVPPError(kind: .api, errorNumber: 9700, httpStatus: 400, message: "")
        #expect(!validation.isRetryable)
    }

    @Test func throttlingWaitsAtLeastRetryAfterAndAttemptsAreBounded() {
        let policy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(100), maxDelay: .seconds(1))
        let throttled = AppleVPPError(
            kind: .api,
            errorNumber: 9646,
            httpStatus: 429,
            message: "",
            retryAfterSeconds: 7
        )
        #expect(throttled.isThrottled && throttled.isRetryable)
        #expect(policy.delay(afterAttempt: 1, error: throttled, random: { $0.upperBound }) == .seconds(7))
        #expect(policy.delay(afterAttempt: 3, error: throttled) == nil)
        let tooLong = AppleVPPError(kind: .http, httpStatus: 503, message: "", retryAfterSeconds: 3600)
        #expect(policy.delay(afterAttempt: 1, error: tooLong) == nil)
        let serverError = AppleVPPError(kind: .http, httpStatus: 502, message: "")
        let delay = policy.delay(afterAttempt: 2, error: serverError, random: { $0.upperBound })
        #expect(delay == .milliseconds(200))
    }
}
