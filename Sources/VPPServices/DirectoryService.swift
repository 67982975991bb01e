import Foundation
import VPPProto
import VPPServer
import VPPStorage
import VPPWire

/// The tenant's directory: users, devices, groups and membership, fed by its identity directory and device
/// enrollment (R13, R14, R18, R19, R20, R22). Every call that changes something is audited.
struct DirectoryService: Sendable {
    let directory: DirectoryStore
    let auditor: TenantAuditor

    func register(into router: inout RPCRouter) {
        typealias Directory = VppV1.DirectoryService

        // MARK: Users
        router.register(Directory.UpsertUsers.self, requires: .tenant) { request, context in
            try await self.auditor.audited(context, target: "users:\(request.users.count)") { tenantID in
                let inputs = request.users.map {
                    DirectoryUserInput(
                        externalID: $0.externalId,
                        email: $0.email,
                        appleID: $0.appleId,
                        displayName: $0.displayName,
                        appStoreDisabled: $0.appStoreDisabled
                    )
                }
                return VppV1.UpsertResponse(try await self.directory.upsertUsers(tenantID: tenantID, inputs))
            }
        }
        router.register(Directory.DeleteUsers.self, requires: .tenant) { request, context in
            try await self.auditor.audited(context, target: "users:\(request.keys.count)") { tenantID in
                VppV1.DeleteEntriesResponse(
                    try await self.directory.deleteUsers(tenantID: tenantID, externalIDs: request.keys)
                )
            }
        }
        router.register(Directory.GetUser.self, requires: .tenant) { request, context in
            VppV1.User(try await self.directory.getUser(tenantID: try context.tenantID(), try lookup(request)))
        }
        router.register(Directory.ListUsers.self, requires: .tenant) { request, context in
            let (users, next) = try await self.directory.listUsers(
                tenantID: try context.tenantID(),
                query: query(request.query),
                groupID: try optionalID(request.groupId, field: "group_id"),
                pageSize: pageSize(request.page),
                after: try pageToken(request.page, fields: 2)
            )
            return VppV1.ListUsersResponse(users: users.map(VppV1.User.init), page: pageInfo(next))
        }

        // MARK: Devices
        router.register(Directory.UpsertDevices.self, requires: .tenant) { request, context in
            try await self.auditor.audited(context, target: "devices:\(request.devices.count)") { tenantID in
                let inputs = request.devices.map {
                    DirectoryDeviceInput(
                        serialNumber: $0.serialNumber,
                        ownerExternalID: $0.ownerExternalId,
                        enrollment: DeviceEnrollment($0.enrollment),
                        booksAppPresent: $0.booksAppPresent,
                        name: $0.name,
                        model: $0.model,
                        osVersion: $0.osVersion
                    )
                }
                return VppV1.UpsertResponse(try await self.directory.upsertDevices(tenantID: tenantID, inputs))
            }
        }
        router.register(Directory.DeleteDevices.self, requires: .tenant) { request, context in
            try await self.auditor.audited(context, target: "devices:\(request.keys.count)") { tenantID in
                VppV1.DeleteEntriesResponse(
                    try await self.directory.deleteDevices(tenantID: tenantID, serialNumbers: request.keys)
                )
            }
        }
        router.register(Directory.GetDevice.self, requires: .tenant) { request, context in
            VppV1.Device(try await self.directory.getDevice(tenantID: try context.tenantID(), try lookup(request)))
        }
        router.register(Directory.ListDevices.self, requires: .tenant) { request, context in
            let (devices, next) = try await self.directory.listDevices(
                tenantID: try context.tenantID(),
                query: query(request.query),
                groupID: try optionalID(request.groupId, field: "group_id"),
                ownerExternalID: request.ownerExternalId.isEmpty ? nil : request.ownerExternalId,
                pageSize: pageSize(request.page),
                after: try pageToken(request.page, fields: 2)
            )
            return VppV1.ListDevicesResponse(devices: devices.map(VppV1.Device.init), page: pageInfo(next))
        }

        // MARK: Groups
        router.register(Directory.CreateGroup.self, requires: .tenant) { request, context in
            let tenantID = try context.tenantID()
            return try await self.auditor.audited(
                context,
                tenantID: tenantID,
                target: { "group:\($0?.id ?? request.externalId)" }
            ) {
                let kind: DirectoryGroup.Kind
                switch request.kind {
                case .user: kind = .user
                case .device: kind = .device
                case .unspecified, .unrecognized:
                    throw RPCError.invalidArgument("kind must be GROUP_KIND_USER or GROUP_KIND_DEVICE.", field: "kind")
                }
                return VppV1.Group(
                    try await self.directory.createGroup(
                        tenantID: tenantID,
                        externalID: request.externalId,
                        name: request.name,
                        kind: kind
                    )
                )
            }
        }
        router.register(Directory.UpdateGroup.self, requires: .tenant) { request, context in
            try await self.auditor.audited(context, target: "group:\(request.groupId)") { tenantID in
                VppV1.Group(
                    try await self.directory.updateGroup(
                        tenantID: tenantID,
                        groupID: try parseID(request.groupId, field: "group_id"),
                        name: request.name?.value
                    )
                )
            }
        }
        router.register(Directory.DeleteGroup.self, requires: .tenant) { request, context in
            try await self.auditor.audited(context, target: "group:\(request.groupId)") { tenantID in
                VppV1.DeleteEntriesResponse(
                    try await self.directory.deleteGroup(
                        tenantID: tenantID,
                        groupID: try parseID(request.groupId, field: "group_id")
                    )
                )
            }
        }
        router.register(Directory.GetGroup.self, requires: .tenant) { request, context in
            VppV1.Group(try await self.directory.getGroup(tenantID: try context.tenantID(), try lookup(request)))
        }
        router.register(Directory.ListGroups.self, requires: .tenant) { request, context in
            let kind: DirectoryGroup.Kind?
            switch request.kind {
            case .unspecified: kind = nil
            case .user: kind = .user
            case .device: kind = .device
            case .unrecognized(let value):
                throw RPCError.invalidArgument("kind \(value) is not a GroupKind.", field: "kind")
            }
            let (groups, next) = try await self.directory.listGroups(
                tenantID: try context.tenantID(),
                kind: kind,
                query: query(request.query),
                pageSize: pageSize(request.page),
                after: try pageToken(request.page, fields: 2)
            )
            return VppV1.ListGroupsResponse(groups: groups.map(VppV1.Group.init), page: pageInfo(next))
        }

        // MARK: Membership
        router.register(Directory.AddGroupMembers.self, requires: .tenant) { request, context in
            try await self.auditor.audited(context, target: "group:\(request.groupId)") { tenantID in
                VppV1.GroupMembersResponse(
                    try await self.directory.addGroupMembers(
                        tenantID: tenantID,
                        groupID: try parseID(request.groupId, field: "group_id"),
                        memberKeys: request.memberKeys
                    )
                )
            }
        }
        router.register(Directory.RemoveGroupMembers.self, requires: .tenant) { request, context in
            try await self.auditor.audited(context, target: "group:\(request.groupId)") { tenantID in
                VppV1.GroupMembersResponse(
                    try await self.directory.removeGroupMembers(
                        tenantID: tenantID,
                        groupID: try parseID(request.groupId, field: "group_id"),
                        memberKeys: request.memberKeys
                    )
                )
            }
        }
        router.register(Directory.ListGroupMembers.self, requires: .tenant) { request, context in
            let (keys, next) = try await self.directory.listGroupMembers(
                tenantID: try context.tenantID(),
                groupID: try parseID(request.groupId, field: "group_id"),
                pageSize: pageSize(request.page),
                after: try pageToken(request.page, fields: 1)
            )
            return VppV1.ListGroupMembersResponse(memberKeys: keys, page: pageInfo(next))
        }
    }
}

// MARK: Requests

private func lookup(_ request: VppV1.GetEntryRequest) throws -> DirectoryLookup {
    switch request.by {
    case .id(let text)?: return .id(try parseID(text, field: "id"))
    case .key(let key)?: return .key(key)
    case nil: throw RPCError.invalidArgument("Give the entry's id or its key.", field: "by")
    }
}

private func optionalID(_ text: String, field: String) throws -> UUID? {
    text.isEmpty ? nil : try parseID(text, field: field)
}

/// A list's search text: trimmed, cut to 200 characters, nil when empty.
private func query(_ text: String) -> String? {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    return trimmed.isEmpty ? nil : String(trimmed.prefix(200))
}

// MARK: Responses

extension DeviceEnrollment {
    /// nil for an unspecified or unknown kind: the store refuses that entry.
    init?(_ kind: VppV1.EnrollmentKind) {
        switch kind {
        case .userAffiliated: self = .userAffiliated
        case .automated: self = .automated
        case .appleConfigurator: self = .configurator
        case .unspecified, .unrecognized: return nil
        }
    }
}

extension VppV1.EnrollmentKind {
    init(_ enrollment: DeviceEnrollment) {
        switch enrollment {
        case .userAffiliated: self = .userAffiliated
        case .automated: self = .automated
        case .configurator: self = .appleConfigurator
        }
    }
}

extension VppV1.User {
    init(_ user: DirectoryUser) {
        self.init()
        self.id = user.id.lowercasedText
        self.externalId = user.externalID
        self.email = user.email
        self.appleId = user.appleID
        self.displayName = user.displayName
        self.appStoreDisabled = user.appStoreDisabled
        // R19, R20: the ledger registers a user at Apple when they first need a user license; Apple invites them, and
        // they are associated once they accept the invitation at `invitation_url` (Apple's template, the user's code).
        switch user.vppStatus {
        case "Registered": self.vppState = .invited
        case "Associated": self.vppState = .associated
        case "Retired": self.vppState = .retired
        default: self.vppState = .notRegistered
        }
        self.invitationUrl = self.vppState == .invited ? user.invitationURL : ""
        self.deviceCount = UInt32(clamping: user.deviceCount)
        self.createdAt = VppV1.Timestamp(user.createdAt)
        self.updatedAt = VppV1.Timestamp(user.updatedAt)
    }
}

extension VppV1.Device {
    init(_ device: DirectoryDevice) {
        self.init()
        self.id = device.id.lowercasedText
        self.serialNumber = device.serialNumber
        self.ownerExternalId = device.ownerExternalID ?? ""
        self.enrollment = VppV1.EnrollmentKind(device.enrollment)
        self.booksAppPresent = device.booksAppPresent
        self.name = device.name
        self.model = device.model
        self.osVersion = device.osVersion
        self.createdAt = VppV1.Timestamp(device.createdAt)
        self.updatedAt = VppV1.Timestamp(device.updatedAt)
    }
}

extension VppV1.Group {
    init(_ group: DirectoryGroup) {
        self.init()
        self.id = group.id.lowercasedText
        self.externalId = group.externalID
        self.name = group.name
        self.kind = group.kind == .user ? .user : .device
        self.memberCount = UInt32(clamping: group.memberCount)
        self.createdAt = VppV1.Timestamp(group.createdAt)
        self.updatedAt = VppV1.Timestamp(group.updatedAt)
    }
}

extension VppV1.EntryError {
    init(_ error: DirectoryEntryError) {
        self.init()
        self.index = UInt32(clamping: error.index)
        self.key = error.key
        self.message = error.message
    }
}

extension VppV1.UpsertResponse {
    init(_ summary: DirectoryUpsertSummary) {
        self.init()
        self.created = UInt32(clamping: summary.created)
        self.updated = UInt32(clamping: summary.updated)
        self.unchanged = UInt32(clamping: summary.unchanged)
        self.errors = summary.errors.map(VppV1.EntryError.init)
    }
}

extension VppV1.DeleteEntriesResponse {
    init(_ summary: DirectoryDeleteSummary) {
        self.init()
        self.deleted = UInt32(clamping: summary.deleted)
        self.notFound = UInt32(clamping: summary.notFound)
    }
}

extension VppV1.GroupMembersResponse {
    init(_ summary: DirectoryMembershipSummary) {
        self.init()
        self.changed = UInt32(clamping: summary.changed)
        self.unchanged = UInt32(clamping: summary.unchanged)
        self.errors = summary.errors.map(VppV1.EntryError.init)
    }
}
