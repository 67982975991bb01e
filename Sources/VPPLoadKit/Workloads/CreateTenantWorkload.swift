public import VPPClient
public import VPPProto
import VPPWire

/// `/vpp.v1.OperatorService/CreateTenant`: one tenant per call, named "<prefix><n>" with n from 1. Each call
/// creates a row, a role and a schema at the latest version in one transaction, so this measures the database's
/// DDL path. Needs an operator key.
public struct CreateTenantWorkload: Workload {
    public let namePrefix: String

    public init(namePrefix: String = "load-tenant-") {
        self.namePrefix = namePrefix
    }

    public var name: String { "create-tenants" }
    public var unit: String { "tenants" }

    public func check(welcome: RpcV1.Welcome) throws {
        guard welcome.principalKind == "operator" else {
            throw LoadError("create-tenants needs an operator key; the key given is a \(welcome.principalKind) key.")
        }
    }

    public func call(_ index: Int, on client: VPPClient, timeout: Duration) async throws {
        var request = VppV1.CreateTenantRequest()
        request.displayName = "\(self.namePrefix)\(index + 1)"
        _ = try await client.call(VppV1.OperatorService.CreateTenant.self, request, timeout: timeout)
    }
}
