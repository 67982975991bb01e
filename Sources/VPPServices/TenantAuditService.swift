import Foundation
import VPPProto
import VPPServer
import VPPStorage

/// The tenant's own audit log, read from the tenant's schema.
struct TenantAuditService: Sendable {
    let storage: Storage

    func register(into router: inout RPCRouter) {
        router.register(VppV1.AuditService.ListAuditEvents.self, requires: .tenant) { request, context in
            let tenantID = try parseID(try context.requireTenantID(), field: "tenant")
            let (records, next) = try await self.storage.listTenantAudit(
                tenantID: tenantID,
                target: request.target.isEmpty ? nil : request.target,
                method: request.method.isEmpty ? nil : request.method,
                pageSize: pageSize(request.page),
                after: try pageToken(request.page, fields: 1)
            )
            return VppV1.ListAuditEventsResponse(records, next: next)
        }
    }
}
