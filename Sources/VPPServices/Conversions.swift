import Foundation
import VPPProto
import VPPServer
import VPPStorage
import VPPWire

extension VppV1.Timestamp {
    init(_ date: Date) {
        self.init()
        let seconds = date.timeIntervalSince1970.rounded(.down)
        self.seconds = Int64(seconds)
        self.nanos = Int32(((date.timeIntervalSince1970 - seconds) * 1_000_000_000).rounded(.down))
    }

    var date: Date {
        Date(timeIntervalSince1970: Double(self.seconds) + Double(self.nanos) / 1_000_000_000)
    }
}

extension VppV1.Tenant {
    init(_ record: TenantRecord) {
        self.init()
        self.id = record.id.lowercasedText
        self.displayName = record.displayName
        self.state = record.state == .active ? .active : .suspended
        self.tokenLimit = UInt32(record.tokenLimit)
        // The operator service fills in the count from the token registry.
        self.tokenCount = 0
        self.createdAt = VppV1.Timestamp(record.organizationCreatedAt)
        self.features = VppV1.TenantFeatures(deviceGroupAssignment: record.deviceGroupAssignmentEnabled)
        self.deviceGroupAssignmentAllowed = record.deviceGroupAssignmentAllowed
        self.suspendedReason = record.suspendedReason
        self.updatedAt = VppV1.Timestamp(record.updatedAt)
        self.schemaVersion = UInt32(record.schemaVersion)
    }
}

extension VppV1.ApiKey {
    init(_ record: ApiKeyRecord) {
        self.init()
        self.id = record.id.lowercasedText
        self.kind = record.kind == .operator ? .operator : .tenant
        self.tenantId = record.tenantID?.lowercasedText ?? ""
        self.name = record.name
        self.prefix = record.prefix
        self.createdAt = VppV1.Timestamp(record.createdAt)
        self.revokedAt = record.revokedAt.map(VppV1.Timestamp.init)
        self.lastUsedAt = record.lastUsedAt.map(VppV1.Timestamp.init)
    }
}

extension VppV1.AuditEvent {
    init(_ record: AuditRecord) {
        self.init()
        self.id = "\(record.id)"
        self.time = VppV1.Timestamp(record.at)
        self.principal = record.principal
        self.method = record.method
        self.target = record.target
        self.result = record.result
        self.callId = record.callID
        self.message = record.message
    }
}

/// Parses an id from a request: a malformed one is INVALID_ARGUMENT naming the field.
func parseID(_ text: String, field: String) throws -> UUID {
    guard let id = UUID(canonicalText: text) else {
        throw RPCError.invalidArgument(
            "\(field) must be an id as returned by this server (a UUID); got \"\(text.prefix(80))\".",
            field: field
        )
    }
    return id
}

func pageSize(_ page: VppV1.PageRequest?) -> Int {
    PageToken.pageSize(page?.pageSize ?? 0)
}

func pageToken(_ page: VppV1.PageRequest?, fields: Int) throws -> PageToken? {
    try PageToken.decode(page?.pageToken ?? "", fields: fields)
}

func pageInfo(_ next: PageToken?) -> VppV1.PageInfo {
    VppV1.PageInfo(nextPageToken: next?.encoded ?? "")
}

extension VppV1.ListAuditEventsResponse {
    init(_ records: [AuditRecord], next: PageToken?) {
        self.init()
        self.events = records.map(VppV1.AuditEvent.init)
        self.page = pageInfo(next)
    }
}
