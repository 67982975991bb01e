import Foundation
import Testing
import VPPClient
import VPPProto
import VPPTestSupport
import VPPTesting
import VPPWire

@Suite("Several servers on one database")
struct MultiServerTests {
    @Test("a key revoked through one server is refused at once by another, through NOTIFY")
    func revocationReachesOtherServers() async throws {
        let first = try await TestVPPServer.start(prefix: "multi", listenForChanges: true)
        // The second server would trust its cached key state for an hour: only the notification can tell it.
        let second = try await TestVPPServer.start(
            database: first.database,
            keyRecheckInterval: .seconds(3600),
            tenantStateTTL: .seconds(3600),
            listenForChanges: true,
            operatorKey: first.operatorKey
        )
        let (tenant, key) = try await first.createTenant("shared")
        let onSecond = second.client(key: key, reconnect: false)
        let whoami = try await onSecond.call(VppV1.SystemService.WhoAmI.self, VppV1.WhoAmIRequest())
        #expect(whoami.tenantId == tenant.id)
        // The second server now holds the tenant as active in its cache.
        _ = try await onSecond.call(VppV1.AuditService.ListAuditEvents.self, VppV1.ListAuditEventsRequest())

        // Suspending through the first server reaches the second one's cached tenant state too, through NOTIFY.
        var suspend = VppV1.SuspendTenantRequest()
        suspend.tenantId = tenant.id
        _ = try await first.operatorClient().call(Operator.SuspendTenant.self, suspend)
        let suspendedSeen = await eventually {
            do {
                _ = try await onSecond.call(VppV1.AuditService.ListAuditEvents.self, VppV1.ListAuditEventsRequest())
                return false
            } catch let error as RPCError {
                return error.code == .failedPrecondition
            } catch {
                return false
            }
        }
        #expect(suspendedSeen)

        var revoke = VppV1.RevokeApiKeyRequest()
        revoke.keyId = whoami.keyId
        _ = try await first.operatorClient().call(Operator.RevokeApiKey.self, revoke)
        let refused = await eventually {
            do {
                _ = try await onSecond.call(VppV1.SystemService.WhoAmI.self, VppV1.WhoAmIRequest())
                return false
            } catch let error as RPCError {
                return error.code == .unauthenticated || error.code == .unavailable
            } catch {
                return false
            }
        }
        #expect(refused)
        await second.stop()
        await first.stop()
    }
}
