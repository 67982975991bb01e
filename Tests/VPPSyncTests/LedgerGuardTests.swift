import AppleVPPSimulator
import Foundation
import Testing
import VPPLicensing
import VPPPostgres
import VPPProto
import VPPTesting

/// The database's last guard of the ledger (tenant migration v5): what LicenseStateMachine allows, and R15's seats.
@Suite("Ledger guards in PostgreSQL", .timeLimit(.minutes(5)))
struct LedgerGuardTests {
    static let app = "408709785"

    @Test("The database allows exactly the transitions LicenseStateMachine allows")
    func transitionsMatchTheMachine() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            let fixture = try await LedgerFixture.make(
                env,
                assets: [.init(adamId: Self.app, productType: .app, totalCount: 2)],
                inlineSync: true
            )
            defer { Task { await fixture.client.close() } }
            let rows = try await env.server.storage.withTenant(fixture.tenantID) { transaction in
                try await transaction.query("SELECT from_state, to_state FROM license_transitions")
            }
            let stored = Set(
                try rows.map { row in
                    LicenseStateMachine.Pair(
                        from: try row.decode(String?.self, at: 0).flatMap(LicenseState.init(rawValue:)),
                        to: try row.decode(String?.self, at: 1).flatMap(LicenseState.init(rawValue:))
                    )
                }
            )
            // A change to the machine needs a migration that rewrites the table.
            #expect(stored == LicenseStateMachine.allowedTransitionsUnderAnyPolicy)
        }
    }

    @Test(
        "R15: a change of state the machine does not allow, or a seat beyond what was bought, is refused by PostgreSQL"
    )
    func databaseRefuses() async throws {
        try await SyncEnvironment.run(workers: 0) { env in
            let fixture = try await LedgerFixture.make(
                env,
                assets: [.init(adamId: Self.app, productType: .app, totalCount: 2)],
                inlineSync: true
            )
            defer { Task { await fixture.client.close() } }
            let assetID = try await fixture.assetID(Self.app)
            let lab = try await fixture.deviceGroup("lab", serials: ["G1", "G2", "G3"])
            _ = try await fixture.assign(assetID, lab)
            let storage = env.server.storage
            func refused(_ sql: PostgresQuery) async -> PostgresError? {
                do {
                    try await storage.withTenant(fixture.tenantID) { transaction in _ = try await transaction.query(sql)
                    }
                    return nil
                } catch let error as PostgresError {
                    return error
                } catch {
                    return nil
                }
            }
            // A waiter granted without Apple: not a transition of the machine.
            let skip = await refused("UPDATE licenses SET state = 'granted' WHERE state = 'waiting'")
            #expect(skip?.sqlState == "23514")
            #expect(skip?.message.contains("waiting -> granted") == true)
            // A third seat of two bought, through an allowed transition: the seat guard refuses it.
            let third = await refused("UPDATE licenses SET state = 'reserved', wait_seq = NULL WHERE state = 'waiting'")
            #expect(third?.sqlState == "23514")
            #expect(third?.message.contains("R15") == true)
            // A new entry cannot start with a seat.
            let device = try await storage.withTenant(fixture.tenantID) { transaction in
                try await transaction.query(
                    "INSERT INTO devices (id, serial_number, enrollment) VALUES (gen_random_uuid(), 'G9', 'automated') RETURNING id"
                ).single().decode(UUID.self, at: 0)
            }
            let otherAsset = UUID(uuidString: assetID)!
            let born = await refused(
                "INSERT INTO licenses (id, asset_id, target_kind, device_id, state) VALUES (gen_random_uuid(), \(otherAsset), 'device', \(device), 'granted')"
            )
            #expect(born?.sqlState == "23514")
            #expect(born?.message.contains("none -> granted") == true)
            // What the machine allows passes: the waiter offered instead (AVAILABLE).
            let allowed = await refused(
                "UPDATE licenses SET state = 'available', wait_seq = NULL WHERE state = 'waiting'"
            )
            #expect(allowed == nil)
        }
    }
}
