import Foundation
import Testing
import VPPClient
import VPPProto
import VPPTesting
import VPPWire

@Suite("Directory: devices (R18, R22), groups (R14), membership, isolation, observer", .timeLimit(.minutes(5)))
struct DirectoryRulesTests {
    @Test("R18: devices with owners and enrollment kinds; an automated or Configurator device takes no owner")
    func devicesAndEnrollment() async throws {
        try await DirectoryEnvironment.run { env in
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }
            _ = try await client.upsertUsers([userInput("alice"), userInput("bob")])
            let response = try await client.upsertDevices([
                deviceInput("C02AAA", owner: "alice", name: "Alice's iPad"),
                deviceInput("C02BBB", enrollment: .automated, booksAppPresent: false),  // R22
                deviceInput("C02CCC", enrollment: .appleConfigurator),
                deviceInput("C02DDD", owner: "alice", enrollment: .automated),  // 3: R18
                deviceInput("C02EEE", enrollment: .unspecified),  // 4
                deviceInput("C02FFF", owner: "nobody"),  // 5: unknown owner
                deviceInput("C02GGG", owner: "bob"),
                deviceInput("C02HHH", enrollment: .unrecognized(9)),  // 7
            ])
            #expect(response.created == 4)
            #expect(response.errors.map(\.index) == [3, 4, 5, 7])
            #expect(response.errors.first { $0.index == 3 }?.message.contains("R18") == true)
            #expect(response.errors.first { $0.index == 5 }?.key == "C02FFF")

            let ipad = try await client.device(key: "C02AAA")
            #expect(ipad.ownerExternalId == "alice")
            #expect(ipad.enrollment == .userAffiliated)
            #expect(ipad.name == "Alice's iPad")
            #expect(try await client.device(id: ipad.id).serialNumber == "C02AAA")
            let dep = try await client.device(key: "C02BBB")
            #expect(dep.enrollment == .automated)
            #expect(dep.ownerExternalId.isEmpty)
            #expect(dep.booksAppPresent == false)
            #expect(try await client.device(key: "C02CCC").enrollment == .appleConfigurator)
            #expect(try await client.user(key: "alice").deviceCount == 1)
            #expect(try await client.listDevices(owner: "alice").map(\.serialNumber) == ["C02AAA"])
            #expect(try await client.listDevices(query: "c02b").map(\.serialNumber) == ["C02BBB"])
            let unknownOwner = await rpcError { _ = try await client.listDevices(owner: "nobody") }
            #expect(unknownOwner?.code == .notFound)

            // The same again is unchanged; a move to another owner is an update.
            let again = try await client.upsertDevices([
                deviceInput("C02AAA", owner: "alice", name: "Alice's iPad"),
                deviceInput("C02GGG", owner: "alice"),
            ])
            #expect(again.unchanged == 1)
            #expect(again.updated == 1)
            #expect(try await client.user(key: "alice").deviceCount == 2)

            // A deleted owner leaves the device without one.
            let deleted = try await client.deleteUsers(["alice", "alice", "ghost"])
            #expect(deleted.deleted == 1)
            #expect(deleted.notFound == 1)
            #expect(try await client.device(key: "C02AAA").ownerExternalId.isEmpty)

            let removed = try await client.call(
                Directory.DeleteDevices.self,
                VppV1.DeleteEntriesRequest(keys: ["C02CCC", "C02ZZZ"])
            )
            #expect(removed.deleted == 1)
            #expect(removed.notFound == 1)
            let gone = await rpcError { _ = try await client.device(key: "C02CCC") }
            #expect(gone?.code == .notFound)
        }
    }

    @Test("R14: device groups are refused for a tenant created before 2017, allowed once an operator enables them")
    func deviceGroupsR14() async throws {
        try await DirectoryEnvironment.run { env in
            let (old, client) = try await env.tenant("Old school") { request in
                // 2015-01-01
                request.createdAt = VppV1.Timestamp(seconds: 1_420_070_400)
            }
            defer { Task { await client.close() } }
            let refused = await rpcError { _ = try await client.createGroup("ipads", kind: .device) }
            #expect(refused?.code == .failedPrecondition)
            #expect(refused?.reason == "DEVICE_GROUPS_NOT_ALLOWED")
            #expect(refused?.message.contains("R14") == true)
            // User groups are fine.
            #expect(try await client.createGroup("staff").kind == .user)
            let unspecified = await rpcError { _ = try await client.createGroup("what", kind: .unspecified) }
            #expect(unspecified?.code == .invalidArgument)

            let operatorClient = env.server.operatorClient()
            _ = try await operatorClient.call(
                VppV1.OperatorService.UpdateTenant.self,
                VppV1.UpdateTenantRequest(tenantId: old.id, features: VppV1.TenantFeatures(deviceGroupAssignment: true))
            )
            await operatorClient.close()

            let group = try await client.createGroup("ipads", kind: .device)
            #expect(group.kind == .device)
            #expect(group.memberCount == 0)

            // A tenant created after January 2017 needs no flag.
            let (_, recent) = try await env.tenant("Recent")
            defer { Task { await recent.close() } }
            #expect(try await recent.createGroup("carts", kind: .device).kind == .device)
        }
    }

    @Test("groups: create, duplicate, rename, list by kind and query, delete with its membership")
    func groups() async throws {
        try await DirectoryEnvironment.run { env in
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }
            let staff = try await client.createGroup("staff", name: "All Staff")
            let duplicate = await rpcError { _ = try await client.createGroup("staff") }
            #expect(duplicate?.code == .alreadyExists)
            _ = try await client.createGroup("carts", name: "iPad carts", kind: .device)

            var rename = VppV1.UpdateGroupRequest()
            rename.groupId = staff.id
            var name = VppV1.StringValue()
            name.value = "Teachers"
            rename.name = name
            let renamed = try await client.call(Directory.UpdateGroup.self, rename)
            #expect(renamed.name == "Teachers")
            #expect(renamed.externalId == "staff")
            name.value = ""
            rename.name = name
            let emptyName = await rpcError { _ = try await client.call(Directory.UpdateGroup.self, rename) }
            #expect(emptyName?.code == .invalidArgument)

            var list = VppV1.ListGroupsRequest()
            list.kind = .device
            #expect(try await client.call(Directory.ListGroups.self, list).groups.map(\.externalId) == ["carts"])
            list.kind = .unspecified
            list.query = "TEACH"
            #expect(try await client.call(Directory.ListGroups.self, list).groups.map(\.externalId) == ["staff"])

            _ = try await client.upsertUsers([userInput("u1")])
            _ = try await client.addMembers(staff.id, ["u1"])
            let delete = VppV1.DeleteGroupRequest(groupId: staff.id)
            #expect(try await client.call(Directory.DeleteGroup.self, delete).deleted == 1)
            let gone = await rpcError { _ = try await client.group(id: staff.id) }
            #expect(gone?.code == .notFound)
            let again = await rpcError { _ = try await client.call(Directory.DeleteGroup.self, delete) }
            #expect(again?.code == .notFound)
            // The user stays.
            #expect(try await client.user(key: "u1").externalId == "u1")
        }
    }

    @Test("membership: add, remove and list by key; wrong-kind and unknown keys are entry errors")
    func membership() async throws {
        try await DirectoryEnvironment.run { env in
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }
            _ = try await client.upsertUsers([userInput("u1"), userInput("u2"), userInput("u3")])
            _ = try await client.upsertDevices([
                deviceInput("SER1", enrollment: .automated), deviceInput("SER2", enrollment: .automated),
            ])
            let users = try await client.createGroup("users")
            let devices = try await client.createGroup("devices", kind: .device)

            let added = try await client.addMembers(users.id, ["u2", "SER1", "u1", "nobody", "u2", ""])
            #expect(added.changed == 1)  // u1; u2 is sent twice and refused both times
            #expect(added.errors.map(\.index) == [0, 1, 3, 4, 5])
            #expect(added.errors.first { $0.index == 1 }?.message.contains("device") == true)
            #expect(added.errors.first { $0.index == 3 }?.message.contains("No user") == true)
            let more = try await client.addMembers(users.id, ["u1", "u2", "u3"])
            #expect(more.changed == 2)
            #expect(more.unchanged == 1)
            #expect(try await client.members(users.id).memberKeys == ["u1", "u2", "u3"])
            #expect(try await client.group(id: users.id).memberCount == 3)
            #expect(try await client.listUsers(groupID: users.id).users.count == 3)

            let deviceAdd = try await client.addMembers(devices.id, ["SER2", "u1"])
            #expect(deviceAdd.changed == 1)
            #expect(deviceAdd.errors.map(\.index) == [1])
            #expect(deviceAdd.errors.first?.message.contains("user") == true)
            #expect(try await client.listDevices(groupID: devices.id).map(\.serialNumber) == ["SER2"])
            let wrongList = await rpcError { _ = try await client.listDevices(groupID: users.id) }
            #expect(wrongList?.code == .invalidArgument)

            let removed = try await client.removeMembers(users.id, ["u1", "SER1", "u1x"])
            #expect(removed.changed == 1)
            #expect(removed.errors.map(\.index) == [1, 2])
            let notMember = try await client.removeMembers(users.id, ["u1"])
            #expect(notMember.changed == 0)
            #expect(notMember.unchanged == 1)
            #expect(try await client.members(users.id).memberKeys == ["u2", "u3"])

            // Deleting a member takes it out of its groups.
            _ = try await client.deleteUsers(["u3"])
            #expect(try await client.members(users.id).memberKeys == ["u2"])
        }
    }

    @Test("C3: another tenant's ids and keys read exactly like unknown ones")
    func tenantIsolation() async throws {
        try await DirectoryEnvironment.run { env in
            let (_, a) = try await env.tenant("A")
            let (_, b) = try await env.tenant("B")
            defer {
                Task {
                    await a.close()
                    await b.close()
                }
            }
            _ = try await b.upsertUsers([userInput("b-user")])
            _ = try await b.upsertDevices([deviceInput("B-SERIAL", owner: "b-user")])
            let bUser = try await b.user(key: "b-user")
            let bDevice = try await b.device(key: "B-SERIAL")
            let bGroup = try await b.createGroup("b-group")
            _ = try await b.addMembers(bGroup.id, ["b-user"])
            let aGroup = try await a.createGroup("a-group")

            func sameAsUnknown(_ known: String, _ call: (String) async throws -> Void) async {
                let unknown = UUID().uuidString.lowercased()
                let foreign = await rpcError { try await call(known) }
                let missing = await rpcError { try await call(unknown) }
                #expect(foreign?.code == .notFound)
                #expect(missing?.code == .notFound)
                #expect(
                    foreign?.message.replacingOccurrences(of: known, with: "X")
                        == missing?.message.replacingOccurrences(of: unknown, with: "X")
                )
            }
            await sameAsUnknown(bUser.id) { _ = try await a.user(id: $0) }
            await sameAsUnknown("b-user") { _ = try await a.user(key: $0) }
            await sameAsUnknown(bDevice.id) { _ = try await a.device(id: $0) }
            await sameAsUnknown("B-SERIAL") { _ = try await a.device(key: $0) }
            await sameAsUnknown(bGroup.id) { _ = try await a.group(id: $0) }
            await sameAsUnknown("b-group") { _ = try await a.group(key: $0) }
            await sameAsUnknown(bGroup.id) { _ = try await a.members($0) }
            await sameAsUnknown(bGroup.id) { _ = try await a.addMembers($0, ["b-user"]) }
            await sameAsUnknown(bGroup.id) { _ = try await a.removeMembers($0, ["b-user"]) }
            await sameAsUnknown(bGroup.id) { _ = try await a.listUsers(groupID: $0) }
            await sameAsUnknown(bGroup.id) { id in
                _ = try await a.call(Directory.DeleteGroup.self, VppV1.DeleteGroupRequest(groupId: id))
            }

            // Keys of B's entries are unknown in A's calls.
            let deleted = try await a.deleteUsers(["b-user"])
            #expect(deleted.deleted == 0)
            #expect(deleted.notFound == 1)
            let foreignMember = try await a.addMembers(aGroup.id, ["b-user"])
            #expect(foreignMember.changed == 0)
            #expect(foreignMember.errors.first?.message == "No user of this tenant has this external id.")
            let foreignOwner = try await a.upsertDevices([deviceInput("A-SERIAL", owner: "b-user")])
            #expect(foreignOwner.errors.count == 1)
            // A's upsert of the same key makes A's own user; B's is untouched.
            #expect(try await a.upsertUsers([userInput("b-user", email: "a@example.com")]).created == 1)
            #expect(try await b.user(key: "b-user").email == "b-user@example.com")
            #expect(try await b.members(bGroup.id).memberKeys == ["b-user"])
            #expect(try await b.device(key: "B-SERIAL").ownerExternalId == "b-user")
        }
    }

    @Test("the directory observer is told after each change that can move licenses, and only then")
    func observer() async throws {
        let observer = CountingObserver()
        try await DirectoryEnvironment.run(observer: observer) { env in
            let (tenant, client) = try await env.tenant()
            let (other, otherClient) = try await env.tenant("Other")
            defer {
                Task {
                    await client.close()
                    await otherClient.close()
                }
            }
            var expected = 0
            func check(_ note: Comment) async {
                #expect(await observer.count(tenant.id) == expected, note)
            }
            _ = try await client.upsertUsers([userInput("u1"), userInput("u2")])
            expected += 1
            await check("users created")
            _ = try await client.upsertUsers([userInput("u1")])
            await check("nothing changed")
            _ = try await client.upsertUsers([userInput("")])
            await check("only errors")
            _ = try await client.upsertDevices([deviceInput("S1", owner: "u1")])
            expected += 1
            await check("device created")
            let group = try await client.createGroup("g")
            await check("an empty group moves no license")
            _ = try await client.addMembers(group.id, ["u1", "u2"])
            expected += 1
            await check("members added")
            _ = try await client.addMembers(group.id, ["u1"])
            await check("already a member")
            _ = try await client.removeMembers(group.id, ["u2"])
            expected += 1
            await check("member removed")
            _ = try await client.deleteUsers(["u2"])
            expected += 1
            await check("user deleted")
            _ = try await client.deleteUsers(["nobody"])
            await check("nothing deleted")
            _ = try await client.call(Directory.DeleteGroup.self, VppV1.DeleteGroupRequest(groupId: group.id))
            expected += 1
            await check("group deleted")
            #expect(await observer.count(other.id) == 0)

            // Mutating calls are audited in the tenant's log.
            let audit = try await client.call(VppV1.AuditService.ListAuditEvents.self, VppV1.ListAuditEventsRequest())
            #expect(audit.events.contains { $0.method.hasSuffix("DirectoryService/UpsertUsers") })
            #expect(
                audit.events.contains {
                    $0.method.hasSuffix("DirectoryService/DeleteGroup") && $0.target == "group:\(group.id)"
                }
            )
        }
    }
}
