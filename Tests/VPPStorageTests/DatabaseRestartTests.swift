import Foundation
import Testing
import VPPPostgres
import VPPProto
import VPPTesting
import VPPWire

@Suite("The server and PostgreSQL restarts")
struct DatabaseRestartTests {
    @Test("after PostgreSQL restarts, calls answer UNAVAILABLE for a moment, then work again by themselves")
    func survivesRestart() async throws {
        let cluster = try await TestPostgres.makeDedicatedCluster()
        let admin = PostgresPool(configuration: cluster.configuration(database: "postgres"))
        try await admin.simpleQuery("CREATE DATABASE restart")
        await admin.shutdown()
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
