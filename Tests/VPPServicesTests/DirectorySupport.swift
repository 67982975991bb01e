import Foundation
import Testing
import VPPClient
import VPPProto
import VPPStorage
import VPPTesting
import VPPWire

typealias Directory = VppV1.DirectoryService

/// A server on a fresh database, and helpers to call the directory.
struct DirectoryEnvironment {
    let server: TestVPPServer

    static func run<T: Sendable>(
        observer: any DirectoryObserver = NoDirectoryObserver(),
        _ body: (DirectoryEnvironment) async throws -> T
    ) async throws -> T {
        let server = try await TestVPPServer.start(prefix: "directory", directoryObserver: observer)
        do {
            let result = try await body(DirectoryEnvironment(server: server))
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    /// A tenant and a client with its key (the caller closes it).
    func tenant(_ name: String = "Tenant", configure: (inout VppV1.CreateTenantRequest) -> Void = { _ in }) async throws
        -> (tenant: VppV1.Tenant, client: VPPClient)
    {
        let (tenant, key) = try await server.createTenant(name, configure: configure)
        return (tenant, server.client(key: key))
    }
}

func userInput(_ externalID: String, email: String? = nil, displayName: String = "", appStoreDisabled: Bool = false)
    -> VppV1.UserInput
{
    var user = VppV1.UserInput()
    user.externalId = externalID
    user.email = email ?? "\(externalID)@example.com"
    user.displayName = displayName
    user.appStoreDisabled = appStoreDisabled
    return user
}

func deviceInput(
    _ serial: String,
    owner: String = "",
    enrollment: VppV1.EnrollmentKind = .userAffiliated,
    booksAppPresent: Bool = true,
    name: String = ""
) -> VppV1.DeviceInput {
    var device = VppV1.DeviceInput()
    device.serialNumber = serial
    device.ownerExternalId = owner
    device.enrollment = enrollment
    device.booksAppPresent = booksAppPresent
    device.name = name
    return device
}

extension VPPClient {
    func upsertUsers(_ users: [VppV1.UserInput]) async throws -> VppV1.UpsertResponse {
        var request = VppV1.UpsertUsersRequest()
        request.users = users
        return try await self.call(Directory.UpsertUsers.self, request, timeout: .seconds(60))
    }

    func upsertDevices(_ devices: [VppV1.DeviceInput]) async throws -> VppV1.UpsertResponse {
        var request = VppV1.UpsertDevicesRequest()
        request.devices = devices
        return try await self.call(Directory.UpsertDevices.self, request, timeout: .seconds(60))
    }

    func deleteUsers(_ keys: [String]) async throws -> VppV1.DeleteEntriesResponse {
        var request = VppV1.DeleteEntriesRequest()
        request.keys = keys
        return try await self.call(Directory.DeleteUsers.self, request)
    }

    func user(id: String) async throws -> VppV1.User {
        var request = VppV1.GetEntryRequest()
        request.by = .id(id)
        return try await self.call(Directory.GetUser.self, request)
    }

    func user(key: String) async throws -> VppV1.User {
        var request = VppV1.GetEntryRequest()
        request.by = .key(key)
        return try await self.call(Directory.GetUser.self, request)
    }

    func device(key: String) async throws -> VppV1.Device {
        var request = VppV1.GetEntryRequest()
        request.by = .key(key)
        return try await self.call(Directory.GetDevice.self, request)
    }

    func device(id: String) async throws -> VppV1.Device {
        var request = VppV1.GetEntryRequest()
        request.by = .id(id)
        return try await self.call(Directory.GetDevice.self, request)
    }

    func group(id: String) async throws -> VppV1.Group {
        var request = VppV1.GetEntryRequest()
        request.by = .id(id)
        return try await self.call(Directory.GetGroup.self, request)
    }

    func group(key: String) async throws -> VppV1.Group {
        var request = VppV1.GetEntryRequest()
        request.by = .key(key)
        return try await self.call(Directory.GetGroup.self, request)
    }

    func listUsers(query: String = "", groupID: String = "", pageSize: UInt32 = 0, pageToken: String = "")
        async throws -> VppV1.ListUsersResponse
    {
        var request = VppV1.ListUsersRequest()
        request.query = query
        request.groupId = groupID
        var page = VppV1.PageRequest()
        page.pageSize = pageSize
        page.pageToken = pageToken
        request.page = page
        return try await self.call(Directory.ListUsers.self, request)
    }

    func listDevices(query: String = "", groupID: String = "", owner: String = "") async throws -> [VppV1.Device] {
        var request = VppV1.ListDevicesRequest()
        request.query = query
        request.groupId = groupID
        request.ownerExternalId = owner
        return try await self.call(Directory.ListDevices.self, request).devices
    }

    func createGroup(_ externalID: String, name: String? = nil, kind: VppV1.GroupKind = .user) async throws
        -> VppV1.Group
    {
        var request = VppV1.CreateGroupRequest()
        request.externalId = externalID
        request.name = name ?? "Group \(externalID)"
        request.kind = kind
        return try await self.call(Directory.CreateGroup.self, request)
    }

    func addMembers(_ groupID: String, _ keys: [String]) async throws -> VppV1.GroupMembersResponse {
        var request = VppV1.GroupMembersRequest()
        request.groupId = groupID
        request.memberKeys = keys
        return try await self.call(Directory.AddGroupMembers.self, request)
    }

    func removeMembers(_ groupID: String, _ keys: [String]) async throws -> VppV1.GroupMembersResponse {
        var request = VppV1.GroupMembersRequest()
        request.groupId = groupID
        request.memberKeys = keys
        return try await self.call(Directory.RemoveGroupMembers.self, request)
    }

    func members(_ groupID: String, pageSize: UInt32 = 0, pageToken: String = "") async throws
        -> VppV1.ListGroupMembersResponse
    {
        var request = VppV1.ListGroupMembersRequest()
        request.groupId = groupID
        var page = VppV1.PageRequest()
        page.pageSize = pageSize
        page.pageToken = pageToken
        request.page = page
        return try await self.call(Directory.ListGroupMembers.self, request)
    }
}

/// Counts the observer's calls per tenant.
actor CountingObserver: DirectoryObserver {
    private var counts: [UUID: Int] = [:]

    func directoryChanged(tenantID: UUID) async {
        self.counts[tenantID, default: 0] += 1
    }

    func count(_ tenantID: String) -> Int {
        UUID(uuidString: tenantID).map { self.counts[$0, default: 0] } ?? 0
    }
}
