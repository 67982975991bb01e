public import VPPClient
public import VPPProto

/// The directory and assignment calls a story test makes, as a client written from Protos/ makes them.
public enum StoryRPC {
    /// Users (each with one user-affiliated device `D-<id>`) in a new user group.
    public static func userGroup(_ client: VPPClient, _ name: String, users: [String]) async throws -> String {
        var upsert = VppV1.UpsertUsersRequest()
        upsert.users = users.map { id in
            var user = VppV1.UserInput()
            user.externalId = id
            user.email = "\(id)@example.com"
            return user
        }
        _ = try await client.call(VppV1.DirectoryService.UpsertUsers.self, upsert)
        try await Self.upsertDevices(client, users.map { ("D-\($0)", $0) }, enrollment: .userAffiliated)
        return try await Self.group(client, name, kind: .user, members: users)
    }

    /// Automated (DEP) devices in a new device group.
    public static func deviceGroup(_ client: VPPClient, _ name: String, serials: [String]) async throws -> String {
        try await Self.upsertDevices(client, serials.map { ($0, nil) }, enrollment: .automated)
        return try await Self.group(client, name, kind: .device, members: serials)
    }

    /// Devices (serial number, owner's external id) with the Books app present, all of one enrollment.
    public static func upsertDevices(
        _ client: VPPClient,
        _ devices: [(serial: String, owner: String?)],
        enrollment: VppV1.EnrollmentKind
    ) async throws {
        var request = VppV1.UpsertDevicesRequest()
        request.devices = devices.map { serial, owner in
            var device = VppV1.DeviceInput()
            device.serialNumber = serial
            if let owner { device.ownerExternalId = owner }
            device.enrollment = enrollment
            device.booksAppPresent = true
            return device
        }
        _ = try await client.call(VppV1.DirectoryService.UpsertDevices.self, request)
    }

    public static func group(_ client: VPPClient, _ name: String, kind: VppV1.GroupKind, members: [String])
        async throws -> String
    {
        var create = VppV1.CreateGroupRequest()
        create.externalId = name
        create.name = name
        create.kind = kind
        let group = try await client.call(VppV1.DirectoryService.CreateGroup.self, create)
        var add = VppV1.GroupMembersRequest()
        add.groupId = group.id
        add.memberKeys = members
        _ = try await client.call(VppV1.DirectoryService.AddGroupMembers.self, add)
        return group.id
    }

    public static func assign(
        _ client: VPPClient,
        _ assetID: String,
        _ groupID: String,
        action: VppV1.AssignmentAction = .required,
        type: VppV1.LicenseType
    ) async throws -> VppV1.Assignment {
        var request = VppV1.CreateAssignmentRequest()
        request.assetId = assetID
        request.groupId = groupID
        request.action = action
        request.licenseType = type
        return try await client.call(VppV1.AssignmentService.CreateAssignment.self, request)
    }

    public static func entries(_ client: VPPClient, _ assetID: String) async throws -> [VppV1.LicenseEntry] {
        var request = VppV1.ListLicensesRequest()
        request.assetId = assetID
        request.page = VppV1.PageRequest()
        request.page?.pageSize = 1000
        return try await client.call(VppV1.LicenseService.ListLicenses.self, request).entries
    }

    public static func counts(_ client: VPPClient, _ assetID: String) async throws -> VppV1.LicenseCounts {
        var request = VppV1.GetLicenseCountsRequest()
        request.assetId = assetID
        return try await client.call(VppV1.CatalogService.GetLicenseCounts.self, request)
    }

    /// The asset id of an app or book, by Apple's adamId.
    public static func assetID(_ client: VPPClient, adamID: String) async throws -> String? {
        var request = VppV1.ListAssetsRequest()
        request.query = adamID
        let apps = try await client.call(VppV1.CatalogService.ListApps.self, request).assets
        let books = try await client.call(VppV1.CatalogService.ListBooks.self, request).assets
        return (apps + books).first { $0.adamId == adamID }?.id
    }

    /// The user's id in this service (the clientUserId Apple knows it by).
    public static func userID(_ client: VPPClient, _ externalID: String) async throws -> String {
        var request = VppV1.GetEntryRequest()
        request.by = .key(externalID)
        return try await client.call(VppV1.DirectoryService.GetUser.self, request).id
    }
}
