public import VPPClient
public import VPPProto
import VPPWire

/// A weighted mix of tenant calls (`CallMix`) across prepared tenants: connection c calls as tenant c mod count (the
/// runner gives connection c that tenant's key). With only `counts` it is the license-count read of the standard
/// comparison (Benchmarks/compare.sh).
public struct MixWorkload: Workload {
    public let mix: CallMix
    public let tenants: [LoadTenant]
    public let name: String
    private let pingPayload: [UInt8] = (0..<32).map { UInt8($0) }

    public init(mix: CallMix, tenants: [LoadTenant], name: String = "mix") {
        precondition(!tenants.isEmpty || !mix.needsTenantData)
        self.mix = mix
        self.tenants = tenants
        self.name = name
    }

    public var unit: String { "calls" }

    public func check(welcome: RpcV1.Welcome) throws {
        if self.mix.needsTenantData, welcome.principalKind != "tenant" {
            throw LoadError(
                "The mix's tenant calls need tenant keys; a connection authenticated as \(welcome.principalKind)."
            )
        }
    }

    public func call(_ index: Int, on client: VPPClient, timeout: Duration) async throws {
        try await self.call(index, connection: 0, on: client, timeout: timeout)
    }

    public func call(_ index: Int, connection: Int, on client: VPPClient, timeout: Duration) async throws {
        let call = self.mix.call(at: index)
        // The round of the schedule, so that successive reads of one tenant visit its apps in turn.
        let round = index / self.mix.schedule.count
        switch call {
        case .ping:
            var request = VppV1.PingRequest()
            request.payload = self.pingPayload
            _ = try await client.call(VppV1.SystemService.Ping.self, request, timeout: timeout)
        case .counts:
            let tenant = self.tenants[connection % self.tenants.count]
            var request = VppV1.GetLicenseCountsRequest()
            request.assetId = tenant.assetIDs[round % tenant.assetIDs.count]
            _ = try await client.call(VppV1.CatalogService.GetLicenseCounts.self, request, timeout: timeout)
        case .apps:
            var request = VppV1.ListAssetsRequest()
            var page = VppV1.PageRequest()
            page.pageSize = 20
            request.page = page
            _ = try await client.call(VppV1.CatalogService.ListApps.self, request, timeout: timeout)
        case .assign:
            let tenant = self.tenants[connection % self.tenants.count]
            guard let assignmentID = tenant.assignmentID else {
                throw LoadError("The tenants were prepared without an assignment.")
            }
            var request = VppV1.UpdateAssignmentRequest()
            request.assignmentId = assignmentID
            request.action = round % 2 == 0 ? .required : .available
            _ = try await client.call(VppV1.AssignmentService.UpdateAssignment.self, request, timeout: timeout)
        }
    }
}
