import Foundation
import VPPLogKeys
import VPPServer
import VPPStorage

/// Writes the outcome of a tenant's mutating call to the tenant's own audit log (failed calls included).
struct TenantAuditor: Sendable {
    let storage: Storage

    /// `audited(_:tenantID:target:_:)` for the calling tenant, with a target known before the call runs (most
    /// calls'): `body` gets the tenant's id.
    func audited<Response: Sendable>(
        _ context: CallContext,
        target: String,
        _ body: (_ tenantID: UUID) async throws -> Response
    ) async throws -> Response {
        let tenantID = try context.tenantID()
        return try await self.audited(context, tenantID: tenantID, target: { _ in target }) { try await body(tenantID) }
    }

    /// Runs `body` and records its result; the error the caller sees is the mapped RPC status.
    func audited<Response: Sendable>(
        _ context: CallContext,
        tenantID: UUID,
        target: (Response?) -> String,
        _ body: () async throws -> Response
    ) async throws -> Response {
        do {
            let response = try await body()
            await self.record(context, tenantID: tenantID, target: target(response), result: "OK", message: "")
            return response
        } catch {
            let status = ServiceErrorMapper.map(error, context.logger)
            await self.record(
                context,
                tenantID: tenantID,
                target: target(nil),
                result: status.code.name,
                message: status.message
            )
            throw status
        }
    }

    private func record(_ context: CallContext, tenantID: UUID, target: String, result: String, message: String) async {
        do {
            try await self.storage.recordTenantAudit(
                AuditRecord(context, target: target, result: result, message: message),
                tenantID: tenantID
            )
        } catch {
            // A deleted or unknown tenant has no log to write to; the server log keeps the call.
            context.logger.warning("Could not write the tenant audit record", metadata: [LogKey.error: "\(error)"])
        }
    }
}

extension AuditRecord {
    /// The record of one call: who made it (the principal), which method, the call's id.
    init(_ context: CallContext, target: String, result: String, message: String) {
        self.init(
            principal: context.principal.description,
            method: context.method,
            target: target,
            result: result,
            callID: "\(context.callID)",
            message: message
        )
    }
}

extension CallContext {
    /// The calling tenant's id.
    func tenantID() throws -> UUID {
        try parseID(try self.requireTenantID(), field: "tenant")
    }
}
