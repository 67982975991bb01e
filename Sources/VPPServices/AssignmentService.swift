import Foundation
import Logging
import VPPLicensing
import VPPLogKeys
import VPPProto
import VPPServer
import VPPStorage
import VPPSync
import VPPWire

/// Assignments of apps and books to groups (R13, R14) and the license ledger's views and device-side calls
/// (R15-R23).
struct AssignmentService: Sendable {
    let ledger: LicenseLedger
    let syncs: SyncJobs
    let auditor: TenantAuditor

    /// The push of a token's changes to Apple; the outbox flag and the scheduler's sweep cover a failure here.
    private func push(_ tenantID: UUID, _ tokenID: UUID, _ logger: Logger) async {
        do {
            try await self.syncs.requestPush(tenantID: tenantID, tokenID: tokenID)
        } catch {
            logger.warning(
                "Could not queue the push to Apple; the outbox sweep will",
                metadata: [LogKey.error: "\(error)"]
            )
        }
    }

    func register(into router: inout RPCRouter) {
        typealias Assignments = VppV1.AssignmentService
        router.register(Assignments.CreateAssignment.self, requires: .tenant) { request, context in
            let tenantID = try context.tenantID()
            return try await self.auditor.audited(context, tenantID: tenantID, target: { "assignment:\($0?.id ?? "")" })
            {
                let record = try await self.ledger.createAssignment(
                    tenantID: tenantID,
                    assetID: try parseID(request.assetId, field: "asset_id"),
                    groupID: try parseID(request.groupId, field: "group_id"),
                    action: try Self.action(request.action),
                    licenseType: try Self.licenseType(request.licenseType)
                )
                await self.push(tenantID, record.tokenID, context.logger)
                return VppV1.Assignment(record)
            }
        }
        router.register(Assignments.GetAssignment.self, requires: .tenant) { request, context in
            VppV1.Assignment(
                try await self.ledger.getAssignment(
                    tenantID: try context.tenantID(),
                    try parseID(request.assignmentId, field: "assignment_id")
                )
            )
        }
        router.register(Assignments.ListAssignments.self, requires: .tenant) { request, context in
            let (records, next) = try await self.ledger.listAssignments(
                tenantID: try context.tenantID(),
                assetID: request.assetId.isEmpty ? nil : try parseID(request.assetId, field: "asset_id"),
                groupID: request.groupId.isEmpty ? nil : try parseID(request.groupId, field: "group_id"),
                pageSize: pageSize(request.page),
                after: try pageToken(request.page, fields: 2)
            )
            return VppV1.ListAssignmentsResponse(assignments: records.map(VppV1.Assignment.init), page: pageInfo(next))
        }
        router.register(Assignments.UpdateAssignment.self, requires: .tenant) { request, context in
            try await self.auditor.audited(context, target: "assignment:\(request.assignmentId)") { tenantID in
                let record = try await self.ledger.updateAssignment(
                    tenantID: tenantID,
                    try parseID(request.assignmentId, field: "assignment_id"),
                    action: try Self.action(request.action)
                )
                await self.push(tenantID, record.tokenID, context.logger)
                return VppV1.Assignment(record)
            }
        }
        router.register(Assignments.DeleteAssignment.self, requires: .tenant) { request, context in
            try await self.auditor.audited(context, target: "assignment:\(request.assignmentId)") { tenantID in
                let id = try parseID(request.assignmentId, field: "assignment_id")
                let record = try await self.ledger.getAssignment(tenantID: tenantID, id)
                let (released, pending) = try await self.ledger.deleteAssignment(tenantID: tenantID, id)
                await self.push(tenantID, record.tokenID, context.logger)
                return VppV1.DeleteAssignmentResponse(
                    released: UInt32(clamping: released),
                    pendingRelease: UInt32(clamping: pending)
                )
            }
        }

        typealias Licenses = VppV1.LicenseService
        router.register(Licenses.GetLicenseUsage.self, requires: .tenant) { request, context in
            let usage = try await self.ledger.usage(
                tenantID: try context.tenantID(),
                assetID: try parseID(request.assetId, field: "asset_id")
            )
            return VppV1.LicenseUsage(usage)
        }
        router.register(Licenses.ListLicenses.self, requires: .tenant) { request, context in
            let state: TargetState?
            if case .unrecognized(let value) = request.state {
                throw RPCError.invalidArgument("state \(value) is not an InstallState.", field: "state")
            }
            state = request.state == .unspecified ? nil : TargetState(request.state)
            let (entries, next) = try await self.ledger.entries(
                tenantID: try context.tenantID(),
                assetID: try parseID(request.assetId, field: "asset_id"),
                state: state,
                pageSize: pageSize(request.page),
                after: try pageToken(request.page, fields: 2)
            )
            return VppV1.ListLicensesResponse(entries: entries.map { VppV1.LicenseEntry($0) }, page: pageInfo(next))
        }
        router.register(Licenses.GetDeviceStatus.self, requires: .tenant) { request, context in
            guard !request.serialNumber.isEmpty else {
                throw RPCError.invalidArgument("serial_number is required.", field: "serial_number")
            }
            let status = try await self.ledger.targetStatus(
                tenantID: try context.tenantID(),
                serialNumber: request.serialNumber,
                userExternalID: nil
            )
            return VppV1.TargetStatus(key: request.serialNumber, status)
        }
        router.register(Licenses.GetUserStatus.self, requires: .tenant) { request, context in
            guard !request.externalId.isEmpty else {
                throw RPCError.invalidArgument("external_id is required.", field: "external_id")
            }
            let status = try await self.ledger.targetStatus(
                tenantID: try context.tenantID(),
                serialNumber: nil,
                userExternalID: request.externalId
            )
            return VppV1.TargetStatus(key: request.externalId, status)
        }
        router.register(Licenses.ReportInstallResults.self, requires: .tenant) { request, context in
            let tenantID = try context.tenantID()
            guard request.reports.count <= 5000 else {
                throw RPCError.invalidArgument(
                    "At most 5,000 reports per call; got \(request.reports.count).",
                    field: "reports"
                )
            }
            var inputs: [InstallReportInput] = []
            for (index, report) in request.reports.enumerated() {
                let outcome: InstallReportInput.Outcome
                switch report.outcome {
                case .installed: outcome = .installed
                case .failed: outcome = .failed
                case .removed: outcome = .removed
                case .unspecified, .unrecognized:
                    throw RPCError.invalidArgument(
                        "reports[\(index)].outcome must be INSTALLED, FAILED or REMOVED.",
                        field: "reports"
                    )
                }
                inputs.append(
                    InstallReportInput(
                        serialNumber: report.serialNumber,
                        adamID: report.adamId,
                        outcome: outcome,
                        reason: report.reason
                    )
                )
            }
            let (applied, freed, errors) = try await self.ledger.reportInstalls(tenantID: tenantID, inputs)
            if freed > 0 {
                try await self.syncs.pushPending(ledger: self.ledger, tenantID: tenantID)
            }
            return VppV1.ReportInstallResultsResponse(
                applied: UInt32(clamping: applied),
                freedLicenses: UInt32(clamping: freed),
                errors: errors
            )
        }
        router.register(Licenses.RequestApp.self, requires: .tenant) { request, context in
            let tenantID = try context.tenantID()
            guard !request.userExternalId.isEmpty else {
                throw RPCError.invalidArgument("user_external_id is required.", field: "user_external_id")
            }
            let entry = try await self.ledger.requestApp(
                tenantID: tenantID,
                assetID: try parseID(request.assetId, field: "asset_id"),
                userExternalID: request.userExternalId,
                serialNumber: request.serialNumber
            )
            try await self.syncs.pushPending(ledger: self.ledger, tenantID: tenantID)
            return VppV1.LicenseEntry(entry)
        }
    }

    static func action(_ action: VppV1.AssignmentAction) throws -> AssignmentRecord.Action {
        switch action {
        case .required: return .required
        case .available: return .available
        case .uninstall: return .uninstall
        case .unspecified, .unrecognized:
            throw RPCError.invalidArgument("action must be REQUIRED, AVAILABLE or UNINSTALL (R13).", field: "action")
        }
    }

    static func licenseType(_ type: VppV1.LicenseType) throws -> AssignmentRecord.LicenseType {
        switch type {
        case .user: return .user
        case .device: return .device
        case .unspecified, .unrecognized:
            throw RPCError.invalidArgument("license_type must be USER or DEVICE.", field: "license_type")
        }
    }
}

extension VppV1.Assignment {
    init(_ record: AssignmentRecord) {
        self.init()
        self.id = record.id.lowercasedText
        self.assetId = record.assetID.lowercasedText
        self.tokenId = record.tokenID.lowercasedText
        self.groupId = record.groupID.lowercasedText
        switch record.action {
        case .required: self.action = .required
        case .available: self.action = .available
        case .uninstall: self.action = .uninstall
        }
        self.licenseType = record.licenseType == .user ? .user : .device
        self.targets = UInt32(clamping: record.targets)
        self.granted = UInt32(clamping: record.granted)
        self.waiting = UInt32(clamping: record.waiting)
        self.installed = UInt32(clamping: record.installed)
        self.failed = UInt32(clamping: record.failed)
        self.createdAt = VppV1.Timestamp(record.createdAt)
        self.updatedAt = VppV1.Timestamp(record.updatedAt)
    }
}

extension VppV1.LicenseUsage {
    init(_ usage: LicenseUsageRecord) {
        self.init()
        self.assetId = usage.asset.id.lowercasedText
        self.tokenId = usage.asset.tokenID.lowercasedText
        // The same counts as GetLicenseCounts and the catalog (one computation: LedgerCounts).
        self.counts = VppV1.LicenseCounts(usage.asset)
        self.installed = UInt32(clamping: usage[.installed])
        self.pending = UInt32(clamping: usage[.pending])
        self.waitingForLicense = UInt32(clamping: usage[.waitingForLicense])
        self.waitingForInvitation = UInt32(clamping: usage[.waitingForInvitation])
        self.failed = UInt32(clamping: usage[.failed])
        self.notApplicable = UInt32(clamping: usage[.notApplicable])
        self.removing = UInt32(clamping: usage[.removing])
        self.removed = UInt32(clamping: usage[.removed])
        self.available = UInt32(clamping: usage[.available])
    }
}

extension VppV1.InstallState {
    init(_ state: TargetState) {
        switch state {
        case .installed: self = .installed
        case .pending: self = .pending
        case .waitingForLicense: self = .waitingForLicense
        case .waitingForInvitation: self = .waitingForInvitation
        case .failed: self = .failed
        case .notApplicable: self = .notApplicable
        case .removing: self = .removing
        case .removed: self = .removed
        case .available: self = .available
        }
    }
}

extension TargetState {
    /// nil for UNSPECIFIED and unknown values.
    init?(_ state: VppV1.InstallState) {
        guard let match = TargetState.allCases.first(where: { VppV1.InstallState($0) == state }) else { return nil }
        self = match
    }
}

extension VppV1.LicenseEntry {
    init(_ record: LicenseRecord, adamID: String? = nil) {
        self.init()
        self.assetId = record.assetID.lowercasedText
        self.serialNumber = record.serialNumber
        self.userExternalId = record.userExternalID
        self.licenseType = record.targetKind == .user ? .user : .device
        // R23: one state and one reason for one target, whichever call asks (TargetState.of).
        self.state = VppV1.InstallState(record.targetState)
        self.reason = record.explanation
        self.queuePosition = UInt32(clamping: record.queuePosition)
        self.since = VppV1.Timestamp(record.since)
    }
}

extension VppV1.TargetStatus {
    init(
        key: String,
        _ status: (entries: [LicenseRecord], adamIDs: [UUID: String], productTypes: [UUID: String], notes: [String])
    ) {
        self.init()
        self.key = key
        self.entries = status.entries.map { entry in
            var message = VppV1.LicenseEntry(entry)
            // R22: a book on a device without the Books app cannot be read.
            if status.productTypes[entry.assetID] == "Book", status.notes.contains(where: { $0.contains("R22") }) {
                message.reason =
                    "The Books app is missing on this device: the book cannot be read until it is reinstalled (R22)."
            }
            return message
        }
        self.notes = status.notes
    }
}
