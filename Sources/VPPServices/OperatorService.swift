import Foundation
import Logging
import VPPLogKeys
import VPPProto
public import VPPServer
public import VPPStorage
import VPPWire

/// The platform operator's API (C9): tenants, API keys, the operator audit log and the migration state.
/// Every mutating call is written to the operator audit log with its result, failed ones included.
struct OperatorService: Sendable {
    let storage: Storage
    let authenticator: StorageAuthenticator

    func register(into router: inout RPCRouter) {
        typealias Operator = VppV1.OperatorService
        router.register(Operator.CreateTenant.self, requires: .operator) { request, context in
            try await self.audited(context, target: { "tenant:\($0?.tenant?.id ?? "")" }) {
                try await self.createTenant(request)
            }
        }
        router.register(Operator.GetTenant.self, requires: .operator) { request, _ in
            let tenant = try await self.storage.tenants.get(try parseID(request.tenantId, field: "tenant_id"))
            return try await self.withTokenCounts([tenant])[0]
        }
        router.register(Operator.ListTenants.self, requires: .operator) { request, _ in
            try await self.listTenants(request)
        }
        router.register(Operator.UpdateTenant.self, requires: .operator) { request, context in
            try await self.audited(context, target: { _ in "tenant:\(request.tenantId)" }) {
                let id = try parseID(request.tenantId, field: "tenant_id")
                let record = try await self.storage.tenants.update(
                    id,
                    displayName: request.displayName?.value,
                    tokenLimit: request.tokenLimit.map { Int($0.value) },
                    deviceGroupAssignment: request.features?.deviceGroupAssignment
                )
                await self.tenantChanged(id)
                return try await self.withTokenCounts([record])[0]
            }
        }
        router.register(Operator.SuspendTenant.self, requires: .operator) { request, context in
            try await self.audited(context, target: { _ in "tenant:\(request.tenantId)" }) {
                let id = try parseID(request.tenantId, field: "tenant_id")
                let reason = String(request.reason.prefix(500))
                let record = try await self.storage.tenants.setState(
                    id,
                    .suspended,
                    reason: reason.isEmpty ? "suspended by an operator" : reason
                )
                await self.tenantChanged(id)
                return try await self.withTokenCounts([record])[0]
            }
        }
        router.register(Operator.ResumeTenant.self, requires: .operator) { request, context in
            try await self.audited(context, target: { _ in "tenant:\(request.tenantId)" }) {
                let id = try parseID(request.tenantId, field: "tenant_id")
                let record = try await self.storage.tenants.setState(id, .active, reason: "")
                await self.tenantChanged(id)
                return try await self.withTokenCounts([record])[0]
            }
        }
        router.register(Operator.DeleteTenant.self, requires: .operator) { request, context in
            try await self.audited(context, target: { _ in "tenant:\(request.tenantId)" }) {
                let id = try parseID(request.tenantId, field: "tenant_id")
                guard request.confirm == request.tenantId else {
                    throw RPCError.invalidArgument(
                        "Deleting a tenant drops all its data and cannot be undone: set confirm to the tenant's id to go ahead.",
                        field: "confirm"
                    )
                }
                let keys = try await self.storage.apiKeys.ids(ofTenant: id)
                // The tenant's tokens are released with its registry rows (C4): another tenant may upload them now.
                let released = try await self.storage.tokenCounts(tenantIDs: [id])[id] ?? 0
                try await self.storage.tenants.delete(id)
                await self.tenantChanged(id)
                // The tenant's keys went with it: refuse them from the next call on, here and on other servers.
                for key in keys {
                    self.authenticator.keyRevoked(key)
                    await self.storage.announceChange("key:\(key.lowercasedText)")
                }
                return VppV1.DeleteTenantResponse(releasedTokens: UInt32(clamping: released))
            }
        }
        router.register(Operator.CreateApiKey.self, requires: .operator) { request, context in
            try await self.audited(context, target: { "key:\($0?.key?.id ?? "")" }) {
                try await self.createKey(tenantID: request.tenantId, name: request.name)
            }
        }
        router.register(Operator.ListApiKeys.self, requires: .operator) { request, _ in
            let tenantID = request.tenantId.isEmpty ? nil : try parseID(request.tenantId, field: "tenant_id")
            let (keys, next) = try await self.storage.apiKeys.list(
                tenantID: tenantID,
                includeRevoked: request.includeRevoked,
                pageSize: pageSize(request.page),
                after: try pageToken(request.page, fields: 2)
            )
            return VppV1.ListApiKeysResponse(keys: keys.map(VppV1.ApiKey.init), page: pageInfo(next))
        }
        router.register(Operator.RevokeApiKey.self, requires: .operator) { request, context in
            try await self.audited(context, target: { _ in "key:\(request.keyId)" }) {
                let id = try parseID(request.keyId, field: "key_id")
                let key = try await self.storage.apiKeys.revoke(id)
                self.authenticator.keyRevoked(id)
                await self.storage.announceChange("key:\(id.lowercasedText)")
                return VppV1.ApiKey(key)
            }
        }
        router.register(Operator.ListOperatorAuditEvents.self, requires: .operator) { request, _ in
            let (records, next) = try await self.storage.listOperatorAudit(
                target: request.target.isEmpty ? nil : request.target,
                method: request.method.isEmpty ? nil : request.method,
                pageSize: pageSize(request.page),
                after: try pageToken(request.page, fields: 1)
            )
            return VppV1.ListAuditEventsResponse(records, next: next)
        }
        router.register(Operator.GetMigrationStatus.self, requires: .operator) { _, _ in
            let status = try await self.storage.migrator.status()
            return VppV1.GetMigrationStatusResponse(
                control: VppV1.SchemaVersion(
                    owner: "control",
                    schemaName: "vpp_control",
                    version: UInt32(status.controlVersion),
                    latestVersion: UInt32(status.latestControlVersion)
                ),
                tenants: status.tenants.map { tenant in
                    VppV1.SchemaVersion(
                        owner: tenant.tenantID.lowercasedText,
                        schemaName: tenant.schemaName,
                        version: UInt32(tenant.version),
                        latestVersion: UInt32(status.latestTenantVersion)
                    )
                },
                tenantsBehind: UInt32(status.tenantsBehind)
            )
        }
    }

    // MARK: Handlers

    private func createTenant(_ request: VppV1.CreateTenantRequest) async throws -> VppV1.CreateTenantResponse {
        let record = try await self.storage.tenants.create(
            displayName: request.displayName,
            tokenLimit: request.tokenLimit == 0 ? nil : Int(request.tokenLimit),
            organizationCreatedAt: request.createdAt?.date,
            deviceGroupAssignment: request.features?.deviceGroupAssignment ?? false
        )
        var response = VppV1.CreateTenantResponse(tenant: VppV1.Tenant(record))
        if !request.initialKeyName.isEmpty {
            response.initialKey = try await self.createKey(tenantID: record.id.uuidString, name: request.initialKeyName)
        }
        return response
    }

    private func createKey(tenantID: String, name: String) async throws -> VppV1.CreateApiKeyResponse {
        let tenant = tenantID.isEmpty ? nil : try parseID(tenantID, field: "tenant_id")
        let (key, secret) = try await self.storage.apiKeys.create(
            kind: tenant == nil ? .operator : .tenant,
            tenantID: tenant,
            name: name
        )
        return VppV1.CreateApiKeyResponse(key: VppV1.ApiKey(key), secret: secret)
    }

    private func listTenants(_ request: VppV1.ListTenantsRequest) async throws -> VppV1.ListTenantsResponse {
        let state: TenantRecord.State?
        switch request.state {
        case .unspecified: state = nil
        case .active: state = .active
        case .suspended: state = .suspended
        case .unrecognized(let value):
            throw RPCError.invalidArgument("state \(value) is not a TenantState.", field: "state")
        }
        let filter = request.nameContains.trimmingCharacters(in: .whitespaces)
        let (tenants, next) = try await self.storage.tenants.list(
            pageSize: pageSize(request.page),
            after: try pageToken(request.page, fields: 2),
            nameContains: filter.isEmpty ? nil : String(filter.prefix(200)),
            state: state
        )
        return VppV1.ListTenantsResponse(tenants: try await self.withTokenCounts(tenants), page: pageInfo(next))
    }

    /// The tenants as the API shows them, with the number of tokens each holds.
    private func withTokenCounts(_ tenants: [TenantRecord]) async throws -> [VppV1.Tenant] {
        let counts = try await self.storage.tokenCounts(tenantIDs: tenants.map(\.id))
        return tenants.map { tenant in
            var message = VppV1.Tenant(tenant)
            message.tokenCount = UInt32(clamping: counts[tenant.id] ?? 0)
            return message
        }
    }

    private func tenantChanged(_ id: UUID) async {
        self.storage.forgetTenant(id)
        await self.storage.announceChange("tenant:\(id.lowercasedText)")
    }

    /// Runs a mutating call and writes its outcome to the operator audit log.
    private func audited<Response: Sendable>(
        _ context: CallContext,
        target: (Response?) -> String,
        _ body: () async throws -> Response
    ) async throws -> Response {
        do {
            let response = try await body()
            await self.audit(context, target: target(response), result: "OK", message: "")
            return response
        } catch {
            let status = ServiceErrorMapper.map(error, context.logger)
            await self.audit(context, target: target(nil), result: status.code.name, message: status.message)
            throw status
        }
    }

    private func audit(_ context: CallContext, target: String, result: String, message: String) async {
        do {
            try await self.storage.recordOperatorAudit(
                AuditRecord(context, target: target, result: result, message: message)
            )
        } catch {
            context.logger.error("Could not write the operator audit record", metadata: [LogKey.error: "\(error)"])
        }
    }
}
