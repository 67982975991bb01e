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
    VppV1.UserInput(
        externalId: externalID,
        email: email ?? "\(externalID)@example.com",
        displayName: displayName,
        appStoreDisabled: appStoreDisabled
    )
}

func deviceInput(
    _ serial: String,
    owner: String = "",
    enrollment: VppV1.EnrollmentKind = .userAffiliated,
    booksAppPresent: Bool = true,
    name: String = ""
) -> VppV1.DeviceInput {
    VppV1.DeviceInput(
        serialNumber: serial,
        ownerExternalId: owner,
        enrollment: enrollment,
        booksAppPresent: booksAppPresent,
        name: name
    )
}

extension VPPClient {
    func upsertUsers(_ users: [VppV1.UserInput]) async throws -> VppV1.UpsertResponse {
        try await self.call(Directory.UpsertUsers.self, VppV1.UpsertUsersRequest(users: users), timeout: .seconds(60))
    }

    func upsertDevices(_ devices: [VppV1.DeviceInput]) async throws -> VppV1.UpsertResponse {
        try await self.call(
            Directory.UpsertDevices.self,
            VppV1.UpsertDevicesRequest(devices: devices),
            timeout: .seconds(60)
        )
    }

    func deleteUsers(_ keys: [String]) async throws -> VppV1.DeleteEntriesResponse {
        try await self.call(Directory.DeleteUsers.self, VppV1.DeleteEntriesRequest(keys: keys))
    }

    func user(id: String) async throws -> VppV1.User {
        try await self.call(Directory.GetUser.self, VppV1.GetEntryRequest(by: .id(id)))
    }

    func user(key: String) async throws -> VppV1.User {
        try await self.call(Directory.GetUser.self, VppV1.GetEntryRequest(by: .key(key)))
    }

    func device(key: String) async throws -> VppV1.Device {
        try await self.call(Directory.GetDevice.self, VppV1.GetEntryRequest(by: .key(key)))
    }

    func device(id: String) async throws -> VppV1.Device {
        try await self.call(Directory.GetDevice.self, VppV1.GetEntryRequest(by: .id(id)))
    }

    func group(id: String) async throws -> VppV1.Group {
        try await self.call(Directory.GetGroup.self, VppV1.GetEntryRequest(by: .id(id)))
    }

    func group(key: String) async throws -> VppV1.Group {
        try await self.call(Directory.GetGroup.self, VppV1.GetEntryRequest(by: .key(key)))
    }

    func listUsers(query: String = "", groupID: String = "", pageSize: UInt32 = 0, pageToken: String = "")
        async throws -> VppV1.ListUsersResponse
    {
        let request = VppV1.ListUsersRequest(
            page: VppV1.PageRequest(pageSize: pageSize, pageToken: pageToken),
            query: query,
            groupId: groupID
        )
        return try await self.call(Directory.ListUsers.self, request)
    }

    func listDevices(query: String = "", groupID: String = "", owner: String = "") async throws -> [VppV1.Device] {
        let request = VppV1.ListDevicesRequest(query: query, groupId: groupID, ownerExternalId: owner)
        return try await self.call(Directory.ListDevices.self, request).devices
    }

    func createGroup(_ externalID: String, name: String? = nil, kind: VppV1.GroupKind = .user) async throws
        -> VppV1.Group
    {
        let request = VppV1.CreateGroupRequest(externalId: externalID, name: name ?? "Group \(externalID)", kind: kind)
        return try await self.call(Directory.CreateGroup.self, request)
    }

    func addMembers(_ groupID: String, _ keys: [String]) async throws -> VppV1.GroupMembersResponse {
        try await self.call(
            Directory.AddGroupMembers.self,
            VppV1.GroupMembersRequest(groupId: groupID, memberKeys: keys)
        )
    }

    func removeMembers(_ groupID: String, _ keys: [String]) async throws -> VppV1.GroupMembersResponse {
        try await self.call(
            Directory.RemoveGroupMembers.self,
            VppV1.GroupMembersRequest(groupId: groupID, memberKeys: keys)
        )
    }

    func members(_ groupID: String, pageSize: UInt32 = 0, pageToken: String = "") async throws
        -> VppV1.ListGroupMembersResponse
    {
        let request = VppV1.ListGroupMembersRequest(
            page: VppV1.PageRequest(pageSize: pageSize, pageToken: pageToken),
            groupId: groupID
        )
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
