import AppleVPPSimulator
import Dispatch
import Foundation
import Logging
import Testing
import VPPTesting

/// The README's walkthrough, run with the real `vppctl` binary against a real server and the Apple simulator loaded
/// with the local run's fixture (Deploy/local/demo-fixture.json): upload, list, sync with --wait, apps, a group,
/// a users import with membership, an assignment, a user's status; text and --json; and the error paths a new user
/// meets (wrong key, unknown token, bad token file, usage).
@Suite struct WalkthroughTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The built binary: $VPPCTL_BINARY, else the one built beside the tests (`DaemonProcess.product`).
    static func binary() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["VPPCTL_BINARY"],
            FileManager.default.isExecutableFile(atPath: explicit)
        {
            return explicit
        }
        return try DaemonProcess.product("vppctl")
    }

    struct Run: CustomStringConvertible {
        var status: Int32
        var stdout: String
        var stderr: String

        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(self.stdout.utf8))) as? [String: Any] ?? [:]
        }

        var description: String { "exit \(self.status)\n--- stdout\n\(self.stdout)--- stderr\n\(self.stderr)" }
    }

    /// Runs vppctl with stdout and stderr kept apart (in files, so neither pipe can fill), off the cooperative pool.
    static func vppctl(_ binary: String, _ arguments: [String], environment: [String: String], scratch: String)
        async throws -> Run
    {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                let out = scratch + "/out-" + UUID().uuidString
                let err = scratch + "/err-" + UUID().uuidString
                _ = FileManager.default.createFile(atPath: out, contents: nil)
                _ = FileManager.default.createFile(atPath: err, contents: nil)
                do {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: binary)
                    process.arguments = arguments
                    process.environment = environment
                    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
                    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
                    process.standardInput = FileHandle.nullDevice
                    try process.run()
                    process.waitUntilExit()
                    let run = Run(
                        status: process.terminationStatus,
                        stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                        stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
                    )
                    continuation.resume(returning: run)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    @Test func theReadmeWalkthroughWithTheRealBinary() async throws {
        let binary = try Self.binary()
        var logger = Logger(label: "test.simulator")
        logger.logLevel = .critical
        let fixture = try JSONDecoder().decode(
            SimulatorFixture.self,
            from: Data(contentsOf: Self.root.appendingPathComponent("Deploy/local/demo-fixture.json"))
        )
        try await AppleVPPSimulator.withSimulator(logger: logger) { simulator in
            let tokenFile = try #require(try simulator.core.load(fixture).first).vppToken
            let server = try await TestVPPServer.start(
                prefix: "ctl",
                apple: TestAppleOptions(baseURL: simulator.baseURL)
            )
            let scratch = NSTemporaryDirectory() + "vppctl-walkthrough-" + UUID().uuidString
            do {
                try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
                try await Self.walkthrough(binary: binary, server: server, tokenFile: tokenFile, scratch: scratch)
            } catch {
                await server.stop()
                try? FileManager.default.removeItem(atPath: scratch)
                throw error
            }
            await server.stop()
            try? FileManager.default.removeItem(atPath: scratch)
        }
    }

    static func walkthrough(binary: String, server: TestVPPServer, tokenFile: String, scratch: String) async throws {
        let (_, key) = try await server.createTenant("Demo School")
        let keyFile = scratch + "/demo-tenant.key"
        try (key + "\n").write(toFile: keyFile, atomically: true, encoding: .utf8)
        let tokenPath = scratch + "/2049025000431439.vpptoken"
        try tokenFile.write(toFile: tokenPath, atomically: true, encoding: .utf8)
        // A home of its own, so no config file of the machine's user is read.
        let environment = [
            "VPP_SERVER": "127.0.0.1:\(server.port)", "VPP_API_KEY_FILE": keyFile, "HOME": scratch,
            "PATH": "/usr/bin:/bin", "TERM": "dumb",
        ]
        func vppctl(_ arguments: String..., environment overrides: [String: String] = [:]) async throws -> Run {
            try await Self.vppctl(
                binary,
                arguments,
                environment: environment.merging(overrides) { $1 },
                scratch: scratch
            )
        }

        // What Deploy/run-local.sh does for the demo tenant: upload its token (R1).
        let upload = try await vppctl(
            "tokens",
            "upload",
            tokenPath,
            "--apple-id",
            "vpp-admin@demo-school.example",
            "--account-type",
            "education",
            "--name",
            "Demo School",
            "--json"
        )
        #expect(upload.status == 0, "\(upload)")
        let uploaded = upload.json["token"] as? [String: Any]
        let tokenID = try #require(uploaded?["id"] as? String, "\(upload)")
        #expect(uploaded?["account_type"] as? String == "EDUCATION")
        #expect((upload.json["sync_job_id"] as? String)?.isEmpty == false)

        // Walkthrough 3: the token list (R6).
        let tokens = try await vppctl("tokens", "list")
        #expect(tokens.status == 0, "\(tokens)")
        let header = tokens.stdout.split(separator: "\n").first.map(String.init) ?? ""
        #expect(
            header.hasPrefix("ID") && header.contains("NAME") && header.contains("STATE")
                && header.contains("LAST SYNC")
        )
        #expect(tokens.stdout.contains(tokenID) && tokens.stdout.contains("Demo School"))
        #expect(!tokens.stdout.contains("\u{1B}"), "no colour when stdout is not a terminal")

        // Walkthrough 4: sync now and wait (R7); the progress goes to stderr, the summary to stdout.
        let sync = try await vppctl("tokens", "sync", "--wait")
        #expect(sync.status == 0, "\(sync)")
        #expect(sync.stdout.hasPrefix("Sync ") && sync.stdout.contains("succeeded"), "\(sync)")
        #expect(sync.stdout.contains("custom app skipped (R9)"), "\(sync)")
        #expect(sync.stdout.split(separator: "\n").count == 1, "one-line summary")
        #expect(sync.stderr.contains("sync: succeeded"), "\(sync)")
        let syncJSON = try await vppctl("tokens", "sync", tokenID, "--wait", "--json")
        #expect(syncJSON.status == 0, "\(syncJSON)")
        #expect(syncJSON.json["state"] as? String == "SUCCEEDED", "\(syncJSON)")
        #expect(syncJSON.json["token_id"] as? String == tokenID)
        #expect(syncJSON.stderr.isEmpty, "--json keeps stderr quiet off a terminal: \(syncJSON)")

        // Walkthrough 5: the apps and their counts (R8, R9: the custom app is not listed).
        let apps = try await vppctl("apps", "list")
        #expect(apps.status == 0, "\(apps)")
        #expect(apps.stdout.contains("Pages") && apps.stdout.contains("Keynote"), "\(apps)")
        #expect(apps.stdout.contains("unlimited"), "the free app: \(apps)")
        let appsJSON = try await vppctl("apps", "list", "--json")
        let assets = appsJSON.json["assets"] as? [[String: Any]] ?? []
        let pages = try #require(assets.first { $0["name"] as? String == "Pages" }, "\(appsJSON)")
        #expect((pages["counts"] as? [String: Any])?["total"] as? Int == 30)
        #expect(!assets.contains { $0["adam_id"] as? String == "1000000002" }, "R9")

        // Walkthrough 6 and 7: a user group, and users imported into it.
        let group = try await vppctl("groups", "create", "year-7", "--name", "Year 7", "--kind", "user")
        #expect(group.status == 0, "\(group)")
        let imported = try await vppctl(
            "users",
            "import",
            Self.root.appendingPathComponent("Deploy/local/demo-users.csv").path
        )
        #expect(imported.status == 0, "\(imported)")
        #expect(
            imported.stdout.contains("3 users created") && imported.stdout.contains("3 group memberships added"),
            "\(imported)"
        )

        // Walkthrough 8: Pages assigned to the group (R13).
        let assigned = try await vppctl(
            "assignments",
            "create",
            "--asset",
            "Pages",
            "--group",
            "year-7",
            "--action",
            "required",
            "--json"
        )
        #expect(assigned.status == 0, "\(assigned)")
        #expect(assigned.json["action"] as? String == "REQUIRED", "\(assigned)")
        #expect(assigned.json["license_type"] as? String == "USER")
        #expect(assigned.json["asset_id"] as? String == pages["id"] as? String)
        let assignments = try await vppctl("assignments", "list", "--group", "year-7")
        #expect(assignments.status == 0 && assignments.stdout.contains("REQUIRED"), "\(assignments)")

        // Walkthrough 9: where one user stands (R23).
        let status = try await vppctl("status", "user", "alice")
        #expect(status.status == 0, "\(status)")
        #expect(status.stdout.contains(pages["id"] as? String ?? "?"), "\(status)")

        // Error paths a new user meets: each one line, with the status and what to do, and its exit code.
        let wrongKey = try await vppctl("tokens", "list", environment: ["VPP_API_KEY": "not-a-key-at-all"])
        #expect(wrongKey.status == 4, "\(wrongKey)")
        #expect(wrongKey.stderr.hasPrefix("vppctl: UNAUTHENTICATED: "), "\(wrongKey)")
        #expect(
            wrongKey.stderr.contains("VPP_API_KEY") && wrongKey.stderr.split(separator: "\n").count == 1,
            "\(wrongKey)"
        )
        #expect(!wrongKey.stderr.contains("not-a-key-at-all"), "the key is never printed")

        let unknownToken = try await vppctl("tokens", "show", "00000000-0000-4000-8000-000000000042")
        #expect(unknownToken.status == 3, "\(unknownToken)")
        #expect(unknownToken.stderr.hasPrefix("vppctl: NOT_FOUND: "), "\(unknownToken)")
        #expect(unknownToken.stderr.contains("Run \"vppctl tokens list\" to see the tokens."), "\(unknownToken)")

        let missingFile = try await vppctl(
            "tokens",
            "upload",
            scratch + "/nope.vpptoken",
            "--apple-id",
            "a@b.example",
            "--account-type",
            "business"
        )
        #expect(missingFile.status == 5, "\(missingFile)")
        #expect(
            missingFile.stderr.contains("does not exist") && missingFile.stderr.contains("Apple School Manager"),
            "\(missingFile)"
        )

        let garbagePath = scratch + "/garbage.vpptoken"
        try "this is not a token".write(toFile: garbagePath, atomically: true, encoding: .utf8)
        let garbage = try await vppctl(
            "tokens",
            "upload",
            garbagePath,
            "--apple-id",
            "a@b.example",
            "--account-type",
            "business"
        )
        #expect(garbage.status == 5, "\(garbage)")
        #expect(garbage.stderr.hasPrefix("vppctl: INVALID_ARGUMENT: "), "\(garbage)")
        #expect(garbage.stderr.contains("download it again"), "\(garbage)")

        let usage = try await vppctl("tokens", "show")
        #expect(usage.status == 2, "\(usage)")

        let down = try await vppctl("tokens", "list", environment: ["VPP_SERVER": "127.0.0.1:1"])
        #expect(down.status == 6, "\(down)")
        #expect(down.stderr.hasPrefix("vppctl: UNAVAILABLE: ") && down.stderr.contains("VPP_SERVER"), "\(down)")

        // Every command's --help says what it does and gives an example.
        for command in [["tokens", "sync"], ["users", "import"], ["assignments", "create"], ["tenants", "create"]] {
            let help = try await Self.vppctl(binary, command + ["--help"], environment: environment, scratch: scratch)
            #expect(help.status == 0 && help.stdout.contains("Example:"), "\(command): \(help)")
        }
        let rootHelp = try await vppctl("--help")
        #expect(rootHelp.stdout.contains("Exit codes:"), "\(rootHelp)")
    }
}
