import ArgumentParser
import Foundation
import Testing
import VPPProto
import VPPWire

@testable import VPPCtlKit

/// Output, errors and input files of vppctl, without a server.
@Suite struct RenderingTests {
    static func token() -> VppV1.Token {
        VppV1.Token(
            id: "6f1c2a9e-0000-4000-8000-000000000001",
            displayName: "Demo School",
            state: .expiringSoon,
            // 2031-01-01T00:00:00Z
            expiresAt: VppV1.Timestamp(seconds: 1_924_992_000),
            appleId: "vpp@school.example",
            appCount: 4,
            lastSync: VppV1.LastSync(result: .succeeded)
        )
    }

    @Test func jsonUsesTheProtosSnakeCaseNamesInTheProtosOrder() throws {
        let json = ProtoJSON.encode(Self.token())
        guard case .object(let fields) = json else {
            Issue.record("not an object")
            return
        }
        #expect(fields.prefix(4).map(\.key) == ["id", "display_name", "state", "state_reason"])
        #expect(json["apple_id"] == .string("vpp@school.example"))
        #expect(json["state"] == .string("EXPIRING_SOON"))
        #expect(json["expires_at"] == .string("2031-01-01T00:00:00Z"))
        #expect(json["app_count"] == .uint(4))
        #expect(json.at(path: "last_sync.result") == .string("SUCCEEDED"))
        #expect(json["next_sync_at"] == .null)
        // The text is valid JSON that Foundation reads back.
        let parsed = try JSONSerialization.jsonObject(with: Data(json.rendered().utf8)) as? [String: Any]
        #expect(parsed?["foreign_user_count"] as? Int == 0)
        #expect(parsed?["display_name"] as? String == "Demo School")
    }

    @Test func oneofsAndBytesAndEscapes() {
        let request = VppV1.GetEntryRequest(by: .key("a\"b\n"))
        #expect(ProtoJSON.encode(request).rendered() == "{\n  \"by\": {\n    \"key\": \"a\\\"b\\n\"\n  }\n}")
        let upload = VppV1.UploadTokenRequest(tokenFile: Array("hi".utf8))
        #expect(ProtoJSON.encode(upload)["token_file"] == .string("aGk="))
    }

    @Test func tablesAreAlignedWithNumbersOnTheRight() {
        let table = Table(
            headers: ["NAME", "APPS", "STATE"],
            rows: [["Demo School", "4", "VALID"], ["X", "120", "-"]]
        )
        #expect(
            table.render() == """
                NAME         APPS  STATE
                Demo School     4  VALID
                X             120  -
                """
        )
    }

    @Test func tableCellsForPeople() {
        #expect(HumanFormat.cell(.string("2031-01-01T00:00:00Z")) == "2031-01-01 00:00 UTC")
        #expect(HumanFormat.cell(.null) == "-")
        #expect(HumanFormat.cell(.string("")) == "-")
        #expect(HumanFormat.cell(.bool(true)) == "yes")
        #expect(HumanFormat.cell(.uint(2_147_483_647)) == "unlimited")
        let rows = Table(
            columns: [Column("ID", "id"), Column("RESULT", "last_sync.result")],
            items: [ProtoJSON.encode(Self.token())]
        )
        #expect(rows.rows == [["6f1c2a9e-0000-4000-8000-000000000001", "SUCCEEDED"]])
    }

    @Test func aRecordIsKeyValueLinesWithNestedFieldsFlattened() {
        let text = HumanFormat.record(ProtoJSON.encode(Self.token()))
        #expect(text.contains("display_name:"))
        #expect(text.contains("last_sync.result:"))
        #expect(text.split(separator: "\n").contains { $0.hasPrefix("state:") && $0.hasSuffix("EXPIRING_SOON") })
    }

    @Test func colourOnlyOnATerminalWithoutNoColor() {
        #expect(!Terminal.colourAllowed(isTerminal: false, environment: [:]))
        #expect(Terminal.colourAllowed(isTerminal: true, environment: ["TERM": "xterm"]))
        #expect(!Terminal.colourAllowed(isTerminal: true, environment: ["NO_COLOR": "1"]))
        #expect(!Terminal.colourAllowed(isTerminal: true, environment: ["TERM": "dumb"]))
        #expect(Table(headers: ["A"], rows: [["1"]]).render(colour: false).contains("\u{1B}") == false)
    }

    // MARK: Errors and exit codes

    @Test func exitCodesDifferByStatusClass() {
        #expect(CtlExitCode.forStatus(.notFound) == .notFound)
        #expect(CtlExitCode.forStatus(.unauthenticated) == .permission)
        #expect(CtlExitCode.forStatus(.permissionDenied) == .permission)
        #expect(CtlExitCode.forStatus(.invalidArgument) == .rejected)
        #expect(CtlExitCode.forStatus(.failedPrecondition) == .rejected)
        #expect(CtlExitCode.forStatus(.unimplemented) == .rejected)
        #expect(CtlExitCode.forStatus(.unavailable) == .retryable)
        #expect(CtlExitCode.forStatus(.deadlineExceeded) == .retryable)
        #expect(CtlExitCode.forStatus(.internal) == .other)
        #expect(Set(CtlExitCode.allCases.map(\.rawValue)).count == CtlExitCode.allCases.count)
    }

    @Test func anErrorIsOneLineWithTheStatusAndWhatToDo() {
        let notFound = CtlError.from(
            RPCError.notFound("No token with id 42."),
            context: ErrorContext(notFoundHint: "Run \"vppctl tokens list\" to see the tokens.")
        )
        #expect(notFound.description == "NOT_FOUND: No token with id 42. Run \"vppctl tokens list\" to see the tokens.")
        #expect(notFound.exitCode == .notFound)

        let refused = CtlError.from(
            RPCError(.unauthenticated, "The API key is not valid"),
            context: ErrorContext(keySource: "VPP_API_KEY")
        )
        #expect(
            refused.description.hasPrefix("UNAUTHENTICATED: The API key is not valid. The key came from VPP_API_KEY;")
        )
        #expect(!refused.description.contains("\n"))

        let down = CtlError.from(RPCError.unavailable("Cannot connect"), context: ErrorContext(server: "127.0.0.1:1"))
        #expect(down.description.contains("127.0.0.1:1"))
        #expect(down.exitCode == .retryable)

        let hinted = CtlError.from(
            RPCError.invalidArgument("not Base64"),
            context: ErrorContext(hints: [.invalidArgument: "Download it again."])
        )
        #expect(hinted.description == "INVALID_ARGUMENT: not Base64. Download it again.")
    }

    // MARK: Sync progress

    @Test func theProgressBarFillsPhaseByPhase() {
        var job = VppV1.SyncJob(state: .running, phase: .users, itemsDone: 1, itemsTotal: 2)
        // users is the 4th of 6 phases, half done: 3.5 / 6.
        #expect(SyncProgress.fraction(job) == 3.5 / 6)
        #expect(SyncProgress.bar(job, width: 12) == "[#######.....]  58%  users 1/2  running")
        job.state = .succeeded
        job.phase = .done
        job.itemsDone = 2
        #expect(SyncProgress.bar(job, width: 4) == "[####] 100%  done 2/2  succeeded")
    }

    @Test func theSummaryIsOneLine() {
        var job = VppV1.SyncJob(
            id: "j1",
            state: .succeeded,
            stats: VppV1.SyncStats(apps: 4, books: 1, skippedAssets: 1, foreignUsers: 1)
        )
        #expect(
            SyncProgress.summary(job)
                == "Sync j1 succeeded: 4 apps, 1 book, 0 users, 0 licenses, 1 custom app skipped (R9), 1 user of another MDM not synced (R10)."
        )
        job.state = .failed
        job.attempt = 3
        job.error = "Apple refused the token: download a new one."
        #expect(
            SyncProgress.summary(job) == "Sync j1 failed after 3 attempts: Apple refused the token: download a new one."
        )
    }

    // MARK: Import files

    @Test func csvWithQuotesAndABlankLine() throws {
        let file = try RecordFile.parseCSV(
            "external_id,display_name,groups\nalice,\"Martin, Alice\",year-7\n\nbob,\"Bob \"\"B\"\" Chen\",year-7;choir\n",
            path: "u.csv"
        )
        #expect(file.rows.map(\.location) == ["line 2", "line 4"])
        #expect(file.rows[0].fields["display_name"] == "Martin, Alice")
        #expect(file.rows[1].fields["display_name"] == "Bob \"B\" Chen")
        let users = try DirectoryRows.users(file)
        #expect(users.map { $0.groups } == [["year-7"], ["year-7", "choir"]])
    }

    @Test func csvWithTheWrongNumberOfFieldsNamesTheLine() {
        #expect {
            try RecordFile.parseCSV("external_id,email\nalice\n", path: "u.csv")
        } throws: { error in
            (error as? CtlError)?.description.contains("u.csv, line 2") == true
        }
    }

    @Test func jsonArraysOrAListCommandsOutput() throws {
        let listed = try RecordFile.parseJSON(
            Data(
                #"{"devices": [{"serial_number": "S1", "books_app_present": false, "created_at": null}], "page": {"next_page_token": ""}}"#
                    .utf8
            ),
            path: "d.json"
        )
        let devices = try DirectoryRows.devices(listed)
        #expect(devices.count == 1)
        #expect(devices[0].input.serialNumber == "S1")
        #expect(devices[0].input.booksAppPresent == false)
        // R18: no owner and no enrollment given: automated enrollment.
        #expect(devices[0].input.enrollment == .automated)

        let plain = try RecordFile.parseJSON(
            Data(#"[{"serial_number": "S2", "owner_external_id": "alice"}]"#.utf8),
            path: "d.json"
        )
        let owned = try DirectoryRows.devices(plain)
        #expect(owned[0].input.enrollment == .userAffiliated)
        // R22: the Books app is there unless the file says otherwise.
        #expect(owned[0].input.booksAppPresent)
    }

    @Test func unknownColumnsAndMissingKeysAreRefused() throws {
        let directory = NSTemporaryDirectory() + "vppctl-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/users.csv"
        try "external_id,emial\nalice,a@x\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect {
            try RecordFile.load(path: path, allowed: DirectoryRows.userColumns)
        } throws: { error in
            (error as? CtlError)?.description.contains("unknown column \"emial\"") == true
        }
        #expect {
            try DirectoryRows.users(RecordFile.parseCSV("external_id,email\n,a@x\n", path: "u.csv"))
        } throws: { error in
            (error as? CtlError)?.description.contains("external_id is empty") == true
        }
        // A file that is not a directory export at all (its first line is not a header we know), or only a header.
        try "somehost\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect {
            try RecordFile.load(path: path, allowed: DirectoryRows.userColumns)
        } throws: { error in
            (error as? CtlError)?.description.contains("line 1: unknown column \"somehost\"") == true
        }
        try "external_id,email\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect {
            try RecordFile.load(path: path, allowed: DirectoryRows.userColumns)
        } throws: { error in
            (error as? CtlError)?.description.contains("holds no entries") == true
        }
        #expect {
            try RecordFile.load(path: directory + "/missing.csv", allowed: DirectoryRows.userColumns)
        } throws: { error in
            (error as? CtlError)?.exitCode == .rejected
        }
    }
}

/// The command tree as a user meets it.
@Suite struct CommandTreeTests {
    /// Every command without subcommands, with its path.
    static func leaves(_ command: any ParsableCommand.Type, path: [String] = []) -> [(
        [String], any ParsableCommand.Type
    )] {
        let configuration = command.configuration
        let name = configuration.commandName ?? "?"
        if configuration.subcommands.isEmpty { return [(path + [name], command)] }
        return configuration.subcommands.flatMap { leaves($0, path: path + [name]) }
    }

    @Test func everyCommandsHelpSaysWhatItDoesWithAnExample() {
        let leaves = Self.leaves(VPPCtlCommand.self)
        // 56 RPCs: some commands share one (users import and add), some add local ones (config).
        #expect(leaves.count >= 56)
        for (path, command) in leaves {
            let configuration = command.configuration
            #expect(!configuration.abstract.isEmpty, "\(path)")
            #expect(configuration.discussion.contains("Example: vppctl "), "\(path.joined(separator: " "))")
        }
    }

    @Test func bulkCallsAreCutIntoBatchesOfTheServersLimit() {
        #expect(DirectoryRows.batchSize == 5000)
        #expect(batches(Array(0..<12_001)).map(\.count) == [5000, 5000, 2001])
        #expect(batches([Int]()).isEmpty)
    }
}
