import Foundation
import Testing
import VPPStorage
import VPPTesting

/// The figures behind the operators' gauges and alerts (docs/operations.md): tokens by state (R6), the soonest
/// expiry (R3) and targets waiting for a license (R15, R16), across every tenant.
@Suite("Fleet snapshot")
struct FleetSnapshotTests {
    @Test("R6, R15: tokens by state, the soonest expiry and waiting targets are counted across tenants")
    func countsAcrossTenants() async throws {
        try await SyncEnvironment.run { env in
            let storage = env.server.storage
            let empty = try await storage.fleetSnapshot()
            #expect(empty.tenants == 0 && empty.licensesWaiting == 0 && empty.soonestExpirySeconds == nil)
            #expect(
                empty.tokens.values.allSatisfy { $0 == 0 } && empty.tokens.count == TokenRecord.State.allCases.count
            )

            // Tenant A: 2 licenses for 5 devices, so 3 wait. Tenant B: a token and nothing assigned.
            let app = SyncEnvironment.pages
            let a = try await LedgerFixture.make(env, assets: [.init(adamId: app, productType: .app, totalCount: 2)])
            defer { Task { await a.client.close() } }
            let group = try await a.deviceGroup("carts", serials: (0..<5).map { "CART\($0)" })
            let assignment = try await a.assign(try await a.assetID(app), group)
            #expect(assignment.waiting == 3)
            let b = try await LedgerFixture.make(env, assets: [.init(adamId: app, productType: .app, totalCount: 1)])
            defer { Task { await b.client.close() } }

            var snapshot = try await storage.fleetSnapshot()
            #expect(snapshot.tenants == 2)
            #expect(snapshot.licensesWaiting == 3)
            #expect(snapshot.tokens[.valid] == 2)
            let soonest = try #require(snapshot.soonestExpirySeconds)
            #expect(soonest > TokenRecord.expiringSoonWindow)

            // B's token now expires in 10 days; A's is claimed by another MDM (R4).
            let tokenB = try #require(UUID(uuidString: b.tokenID))
            try await storage.withTenant(b.tenantID) { transaction in
                try await transaction.query(
                    "UPDATE tokens SET expires_at = now() + interval '10 days' WHERE id = \(tokenB)"
                )
            }
            try await storage.withTenant(a.tenantID) { transaction in
                try await transaction.query("UPDATE tokens SET status = 'claimed_elsewhere'")
            }
            snapshot = try await storage.fleetSnapshot()
            #expect(snapshot.tokens[.expiringSoon] == 1)
            #expect(snapshot.tokens[.claimedElsewhere] == 1)
            #expect(snapshot.tokens[.valid] == 0)
            let tenDays = try #require(snapshot.soonestExpirySeconds)
            #expect(tenDays > 9 * 86400 && tenDays <= 10 * 86400)
        }
    }
}
