import Foundation
import Testing
import VPPPostgres
import VPPProto
import VPPTestSupport
import VPPTesting
import VPPWire

@Suite("The server and PostgreSQL restarts")
struct DatabaseRestartTests {
    /// A cluster of the test's own (it is stopped and started) with one empty database.
    static func clusterWithDatabase(_ name: String) async throws -> EmbeddedPostgres {
        let cluster = try await TestPostgres.makeDedicatedCluster()
        let admin = PostgresPool(configuration: cluster.configuration(database: "postgres"))
        try await admin.simpleQuery("CREATE DATABASE \(try quoteIdentifier(name))")
        await admin.shutdown()
        return cluster
    }

    @Test("after PostgreSQL restarts, calls answer UNAVAILABLE for a moment, then work again by themselves")
    func survivesRestart() async throws {
        let cluster = try await Self.clusterWithDatabase("restart")
        let server = try await TestVPPServer.start(database: cluster.configuration(database: "restart"))
        let client = server.operatorClient()
        _ = try await client.call(Operator.ListTenants.self, VppV1.ListTenantsRequest())

        try await cluster.restart()
        let recovered = await eventually {
            do {
                _ = try await client.call(Operator.ListTenants.self, VppV1.ListTenantsRequest())
                return true
            } catch let error as RPCError where error.code == .unavailable {
                return false
            } catch {
                Issue.record("unexpected error while PostgreSQL restarts: \(error)")
                return false
            }
        }
        #expect(recovered)
        let (tenant, _) = try await server.createTenant("after restart")
        #expect(!tenant.id.isEmpty)
        await client.close()
        await server.stop()
        try await cluster.stop()
    }
}

@Suite("A database outage is an outage, not a revoked key (issue 16)")
struct DatabaseOutageTests {
    @Test(
        "while PostgreSQL is down, calls get UNAVAILABLE / DATABASE_UNAVAILABLE, the connection stays, the key still works after"
    )
    func outageIsNotRevocation() async throws {
        let cluster = try await DatabaseRestartTests.clusterWithDatabase("outage")
        // Keys are re-checked on every call past 50 ms: the outage hits the key check itself.
        let server = try await TestVPPServer.start(
            database: cluster.configuration(database: "outage"),
            keyRecheckInterval: .milliseconds(50)
        )
        let (_, key) = try await server.createTenant("outage")
        // No reconnect: a GoAway would end this client for good, so the last call proves the connection stayed.
        let client = server.client(key: key, reconnect: false)
        _ = try await client.call(VppV1.SystemService.WhoAmI.self, VppV1.WhoAmIRequest())

        try await cluster.stop()
        try await Task.sleep(for: .milliseconds(100))
        var seen: RPCError?
        do {
            _ = try await client.call(VppV1.SystemService.WhoAmI.self, VppV1.WhoAmIRequest())
        } catch let error as RPCError {
            seen = error
        }
        #expect(seen?.code == .unavailable, "got \(String(describing: seen))")
        #expect(seen?.reason == "DATABASE_UNAVAILABLE")
        // A new connection during the outage: told the database is down, not that its key is bad.
        let newcomer = server.client(key: key, reconnect: false)
        var refused: RPCError?
        do {
            _ = try await newcomer.call(VppV1.SystemService.WhoAmI.self, VppV1.WhoAmIRequest())
        } catch let error as RPCError {
            refused = error
        }
        #expect(refused?.code == .unavailable, "got \(String(describing: refused))")
        #expect(refused?.reason == "DATABASE_UNAVAILABLE")
        await newcomer.close()

        try await cluster.start()
        let recovered = await eventually {
            do {
                _ = try await client.call(VppV1.SystemService.WhoAmI.self, VppV1.WhoAmIRequest())
                return true
            } catch let error as RPCError where error.code == .unavailable {
                return false
            } catch {
                Issue.record("the connection did not survive the outage: \(error)")
                return true
            }
        }
        #expect(recovered)
        await client.close()
        await server.stop()
        try await cluster.stop()
    }
}
