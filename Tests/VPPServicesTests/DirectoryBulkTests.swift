import Foundation
import Testing
import VPPClient
import VPPProto
import VPPTesting
import VPPWire

@Suite("Directory: bulk upserts, per-entry errors, hostile input, paging", .timeLimit(.minutes(5)))
struct DirectoryBulkTests {
    @Test("5,000 users upserted in one call; again with some changed: created, updated and unchanged counted right")
    func bulkUpsert() async throws {
        try await DirectoryEnvironment.run { env in
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }
            let users = (0..<5000).map { userInput(String(format: "user-%05d", $0), displayName: "User \($0)") }
            let first = try await client.upsertUsers(users)
            #expect(first.created == 5000)
            #expect(first.updated == 0)
            #expect(first.unchanged == 0)
            #expect(first.errors.isEmpty)

            let before = try await client.user(key: "user-00010")
            var again = users
            // 100 emails changed, 50 users with the App Store disabled (R20), 10 replaced: still 5,000, the limit.
            for index in stride(from: 0, to: 5000, by: 50) { again[index].email = "changed-\(index)@example.com" }
            for index in stride(from: 1, to: 5000, by: 100) { again[index].appStoreDisabled = true }
            again = Array(again.dropLast(10)) + (0..<10).map { userInput("new-\($0)") }
            let second = try await client.upsertUsers(again)
            #expect(second.created == 10)
            #expect(second.updated == 150)
            #expect(second.unchanged == 4840)
            #expect(second.errors.isEmpty)

            let changed = try await client.user(key: "user-00050")
            #expect(changed.email == "changed-50@example.com")
            #expect(try await client.user(key: "user-00101").appStoreDisabled)
            // An unchanged user is not rewritten.
            let same = try await client.user(key: "user-00010")
            #expect(same.updatedAt == before.updatedAt)
            #expect(same.vppState == .notRegistered)
            #expect(same.invitationUrl.isEmpty)
        }
    }

    @Test("bad entries are reported by index and the good ones are applied")
    func perEntryErrors() async throws {
        try await DirectoryEnvironment.run { env in
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }
            let response = try await client.upsertUsers([
                userInput("good-1"),
                userInput(""),  // 1: empty key
                userInput(String(repeating: "x", count: 257)),  // 2: too long
                userInput("bell", displayName: "ring \u{7}"),  // 3: control character
                userInput("twice"),  // 4: duplicate
                userInput("good-2"),
                userInput("twice", email: "other@example.com"),  // 6: duplicate
                userInput("   "),  // 7: blank key
                userInput("long-mail", email: String(repeating: "m", count: 321)),  // 8: too long
            ])
            #expect(response.created == 2)
            #expect(response.errors.map(\.index) == [1, 2, 3, 4, 6, 7, 8])
            #expect(response.errors.first { $0.index == 3 }?.key == "bell")
            #expect(response.errors.first { $0.index == 3 }?.message.contains("U+0007") == true)
            #expect(response.errors.first { $0.index == 4 }?.message.contains("more than once") == true)
            #expect(response.errors.first { $0.index == 2 }?.message.contains("256") == true)
            let listed = try await client.listUsers()
            #expect(listed.users.map(\.externalId).sorted() == ["good-1", "good-2"])
        }
    }

    @Test("SQL in names and keys is stored verbatim; control characters and oversized requests are refused")
    func hostileInput() async throws {
        try await DirectoryEnvironment.run { env in
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }
            let key = "x'); DROP TABLE users; --"
            let name = "Robert'); DROP TABLE groups;-- \\ % _ \"quoted\" 名前 🎉"
            let response = try await client.upsertUsers([userInput(key, email: "a'b@example.com", displayName: name)])
            #expect(response.created == 1)
            let user = try await client.user(key: key)
            #expect(user.externalId == key)
            #expect(user.displayName == name)
            #expect(user.email == "a'b@example.com")
            // LIKE's wildcards in a query match themselves only.
            #expect(try await client.listUsers(query: "%").users.count == 1)
            #expect(try await client.listUsers(query: "_ \"").users.count == 1)
            #expect(try await client.listUsers(query: "a_b").users.isEmpty)
            #expect(try await client.listUsers(query: "DROP TABLE GROUPS").users.count == 1)
            let group = try await client.createGroup("g'; DELETE FROM groups; --", name: "'; TRUNCATE group_users; --")
            #expect(try await client.group(key: "g'; DELETE FROM groups; --").name == "'; TRUNCATE group_users; --")
            #expect(try await client.addMembers(group.id, [key]).changed == 1)
            #expect(try await client.members(group.id).memberKeys == [key])

            // Control characters (NUL cannot travel in a protobuf-c string; the others are refused).
            for bad in ["\u{1B}[31mred", "tab\there", "line\nbreak", "del\u{7F}", "c1\u{85}"] {
                let refused = try await client.upsertUsers([userInput(bad)])
                #expect(refused.created == 0)
                #expect(refused.errors.count == 1)
            }
            let badDevice = try await client.upsertDevices([deviceInput("SERIAL\u{1}")])
            #expect(badDevice.errors.count == 1)
            let badGroup = await rpcError { _ = try await client.createGroup("group\r") }
            #expect(badGroup?.code == .invalidArgument)

            // More than 5,000 entries (the proto's limit): the whole call is refused.
            let tooMany = (0...5_000).map { userInput("bulk-\($0)") }
            let oversized = await rpcError { _ = try await client.upsertUsers(tooMany) }
            #expect(oversized?.code == .invalidArgument)
            #expect(oversized?.message.contains("5000") == true)
            let oversizedDelete = await rpcError { _ = try await client.deleteUsers((0...5_000).map { "k\($0)" }) }
            #expect(oversizedDelete?.code == .invalidArgument)
            let oversizedMembers = await rpcError {
                _ = try await client.addMembers(group.id, (0...5_000).map { "k\($0)" })
            }
            #expect(oversizedMembers?.code == .invalidArgument)
            let devices = (0...5_000).map { deviceInput("S\($0)", enrollment: .automated) }
            let oversizedDevices = await rpcError { _ = try await client.upsertDevices(devices) }
            #expect(oversizedDevices?.code == .invalidArgument)
            #expect(try await client.listUsers().users.count == 1)

            // Bad ids and lookups without a key are INVALID_ARGUMENT.
            let badID = await rpcError { _ = try await client.user(id: "1 OR 1=1") }
            #expect(badID?.code == .invalidArgument)
            let noKey = await rpcError { _ = try await client.call(Directory.GetUser.self, VppV1.GetEntryRequest()) }
            #expect(noKey?.code == .invalidArgument)
        }
    }

    @Test("paging through 2,500 users (and 2,500 group members) with page size 1000 returns each once")
    func paging() async throws {
        try await DirectoryEnvironment.run { env in
            let (_, client) = try await env.tenant()
            defer { Task { await client.close() } }
            let keys = (0..<2500).map { "p-\($0)" }
            #expect(try await client.upsertUsers(keys.map { userInput($0) }).created == 2500)

            var seen: [String] = []
            var token = ""
            var pages = 0
            repeat {
                let page = try await client.listUsers(pageSize: 1000, pageToken: token)
                seen += page.users.map(\.externalId)
                token = page.page?.nextPageToken ?? ""
                pages += 1
            } while !token.isEmpty && pages < 10
            #expect(pages == 3)
            #expect(seen.count == 2500)
            #expect(Set(seen) == Set(keys))

            let group = try await client.createGroup("everyone")
            #expect(try await client.addMembers(group.id, keys).changed == 2500)
            #expect(try await client.group(id: group.id).memberCount == 2500)
            var members: [String] = []
            token = ""
            pages = 0
            repeat {
                let page = try await client.members(group.id, pageSize: 1000, pageToken: token)
                members += page.memberKeys
                token = page.page?.nextPageToken ?? ""
                pages += 1
            } while !token.isEmpty && pages < 10
            #expect(pages == 3)
            #expect(members == keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })

            let forged = await rpcError { _ = try await client.listUsers(pageToken: "not-a-token") }
            #expect(forged?.code == .invalidArgument)
        }
    }
}
