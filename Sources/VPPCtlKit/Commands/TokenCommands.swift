import ArgumentParser
import Foundation
import VPPProto

/// `vppctl tokens …`: TokenService, and SyncService.SyncToken as `tokens sync`.
struct TokensCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "Upload, list, show, renew, delete and sync the tenant's VPP tokens (R1-R7).",
        discussion:
            "Example: vppctl tokens list",
        subcommands: [
            TokensUpload.self, TokensList.self, TokensShow.self, TokensRenew.self, TokensDelete.self, TokensSync.self,
            TokensNotifications.self,
        ]
    )

    static let columns = [
        Column("ID", "id"), Column("NAME", "display_name"), Column("STATE", "state"),
        Column("LOCATION", "location_name"), Column("EXPIRES", "expires_at"), Column("APPS", "app_count"),
        Column("BOOKS", "book_count"), Column("LAST SYNC", "last_sync.finished_at"),
        Column("RESULT", "last_sync.result"),
    ]

    static let fileHint = """
        Give the .vpptoken file exactly as downloaded from Apple School Manager or Apple Business Manager \
        (Preferences > Payments and Billing > Apps and Books > Download); download it again if in doubt.
        """

    /// Reads a .vpptoken file; a missing, unreadable or empty file is an error that says what to give instead.
    static func readTokenFile(_ path: String) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CtlError.badInput("the token file \(path) does not exist", hint: Self.fileHint)
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else {
            throw CtlError.badInput("cannot read the token file \(path)", hint: Self.fileHint)
        }
        guard !data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else {
            throw CtlError.badInput("the token file \(path) is empty", hint: Self.fileHint)
        }
        return Array(data)
    }

    /// The server refuses a file that is not a token with INVALID_ARGUMENT, and an expired one with
    /// FAILED_PRECONDITION: both say what is wrong; this says what to do.
    static let uploadHints: [RpcV1.StatusCode: String] = [
        .invalidArgument: fileHint,
        .alreadyExists: "With vppctl: vppctl tokens renew TOKEN-ID FILE.vpptoken replaces a token's file.",
    ]
}

struct TokensUpload: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "upload",
        abstract:
            "Upload a VPP token file and claim it for this service (R1, R4, C4, C5); its first sync starts at once.",
        discussion: """
            --take-over takes a token from another MDM, which then loses its license assignments and user records \
            for it (R4). --wait follows the first sync to its end.
            Example: vppctl tokens upload sToken.vpptoken --apple-id vpp-admin@school.example --account-type education --wait
            """
    )

    @Argument(
        help: ArgumentHelp("The .vpptoken file as downloaded.", valueName: "file"),
        completion: .file(extensions: ["vpptoken"])
    )
    var file: String

    @Option(help: "The Apple ID of the VPP account that downloaded the token.")
    var appleId: String

    @Option(help: "The VPP account's type (R1).")
    var accountType: Choice<VppV1.AccountType>

    @Option(help: "A name for the token in lists (default: the location's name).")
    var name: String?

    @Flag(help: "Take the token over from another MDM (R4): that MDM loses its assignments for it.")
    var takeOver = false

    @Flag(help: "Follow the first sync with a progress bar until it ends.")
    var wait = false

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        let bytes = try TokensCommand.readTokenFile(self.file)
        try await Ctl.run(self.connection, self.output) { ctl in
            let request = VppV1.UploadTokenRequest(
                tokenFile: bytes,
                appleId: self.appleId,
                accountType: self.accountType.value,
                displayName: self.name ?? "",
                takeOver: self.takeOver
            )
            let answer = try await ctl.call(
                VppV1.TokenService.UploadToken.self,
                request,
                hints: TokensCommand.uploadHints
            )
            if self.wait, !answer.syncJobId.isEmpty {
                ctl.printer.note(
                    "Uploaded token \(answer.token?.id ?? "") (\(answer.token?.displayName ?? "")); following its first sync."
                )
                try await SyncFollower(ctl: ctl).follow(jobID: answer.syncJobId)
            } else {
                ctl.printer.record(
                    answer,
                    headline: ctl.printer.json
                        ? nil : "Uploaded. The first sync is queued (vppctl jobs watch \(answer.syncJobId))."
                )
            }
        }
    }
}

struct TokensList: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the tokens with their state, expiry and last sync (R6).",
        discussion: "Example: vppctl tokens list --state expiring-soon"
    )

    @Option(help: "Only tokens in this state.")
    var state: Choice<VppV1.TokenState>?

    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let answer = try await ctl.call(
                VppV1.TokenService.ListTokens.self,
                VppV1.ListTokensRequest(page: self.page.request, state: self.state?.value ?? .unspecified)
            )
            ctl.printer.list(
                answer,
                items: "tokens",
                columns: TokensCommand.columns,
                empty:
                    "No tokens yet. Upload one: vppctl tokens upload FILE.vpptoken --apple-id APPLE-ID --account-type education"
            )
        }
    }
}

struct TokensShow: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one token: state and why, expiry, location, counts, last and next sync.",
        discussion: "Example: vppctl tokens show 6f1c2a9e-…"
    )

    @Argument(help: ArgumentHelp("The token's id (vppctl tokens list).", valueName: "token-id"))
    var tokenID: String

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.show(
            self.connection,
            self.output,
            VppV1.TokenService.GetToken.self,
            VppV1.GetTokenRequest(tokenId: self.tokenID),
            notFound: Look.tokens
        )
    }
}

struct TokensNotifications: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "notifications",
        abstract: "The notifications Apple sent about a token, newest first, and what each one did (issue 18).",
        discussion: """
            Whether the token is subscribed, when the last one came and how many were refused is in \
            `vppctl tokens show` (notifications).
            Example: vppctl tokens notifications 6f1c2a9e-… --limit 20
            """
    )

    @Argument(help: ArgumentHelp("The token's id (vppctl tokens list).", valueName: "token-id"))
    var tokenID: String

    @Option(help: "At most this many (at most 500).")
    var limit: UInt32 = 50

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let answer = try await ctl.call(
                VppV1.TokenService.ListTokenNotifications.self,
                VppV1.ListTokenNotificationsRequest(tokenId: self.tokenID, limit: self.limit),
                notFound: Look.tokens
            )
            ctl.printer.list(
                answer,
                items: "notifications",
                columns: [
                    Column("RECEIVED", "received_at"), Column("TYPE", "type"), Column("EVENT", "event_id"),
                    Column("PROCESSED", "processed_at"), Column("OUTCOME", "outcome"),
                ],
                empty:
                    "No notifications from Apple for this token (see `vppctl tokens show`: notifications.subscribed, last_error)."
            )
        }
    }
}

struct TokensRenew: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "renew",
        abstract:
            "Replace a token with a renewed file for the same location, keeping apps, assignments and licenses (R3).",
        discussion: "Example: vppctl tokens renew 6f1c2a9e-… sToken_renewed.vpptoken"
    )

    @Argument(help: ArgumentHelp("The token's id (vppctl tokens list).", valueName: "token-id"))
    var tokenID: String

    @Argument(
        help: ArgumentHelp("The renewed .vpptoken file.", valueName: "file"),
        completion: .file(extensions: ["vpptoken"])
    )
    var file: String

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        let bytes = try TokensCommand.readTokenFile(self.file)
        try await Ctl.run(self.connection, self.output) { ctl in
            let token = try await ctl.call(
                VppV1.TokenService.RenewToken.self,
                VppV1.RenewTokenRequest(tokenId: self.tokenID, tokenFile: bytes),
                notFound: Look.tokens,
                hints: TokensCommand.uploadHints
            )
            ctl.printer.record(token, headline: "Renewed.")
        }
    }
}

struct TokensDelete: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a token: its syncs stop and its apps, books and assignments here are removed.",
        discussion: """
            Nothing changes at Apple: licenses this service assigned stay assigned there. Needs --yes.
            Example: vppctl tokens delete 6f1c2a9e-… --yes
            """
    )

    @Argument(help: ArgumentHelp("The token's id (vppctl tokens list).", valueName: "token-id"))
    var tokenID: String

    @Flag(help: "Confirm: the deletion cannot be undone.")
    var yes = false

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    mutating func validate() throws {
        guard self.yes else {
            throw ValidationError(
                "Deleting a token removes its apps, books and assignments here. Add --yes to confirm."
            )
        }
    }

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let answer = try await ctl.call(
                VppV1.TokenService.DeleteToken.self,
                VppV1.DeleteTokenRequest(tokenId: self.tokenID, confirm: self.tokenID),
                notFound: Look.tokens
            )
            ctl.printer.result(
                "Deleted token \(self.tokenID): \(answer.removedAssignments) assignments, \(answer.removedAssets) apps "
                    + "and books, \(answer.forgottenLicenses) licenses forgotten (still assigned at Apple).",
                json: ProtoJSON.encode(answer)
            )
        }
    }
}

struct TokensSync: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Sync a token with Apple now (R7); --wait shows a live progress bar and a summary.",
        discussion: """
            Joins the sync already queued or running for the token, if any. Without a token id, syncs the \
            tenant's only token. Exits 1 if the sync fails.
            Example: vppctl tokens sync --wait
            """
    )

    @Argument(help: ArgumentHelp("The token's id; optional when the tenant holds one token.", valueName: "token-id"))
    var tokenID: String?

    @Flag(help: "Read everything from Apple, not only what changed since the last sync.")
    var full = false

    @Flag(help: "Follow the sync with a progress bar until it ends, then print a summary.")
    var wait = false

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            var request = VppV1.SyncTokenRequest(full: self.full)
            if let tokenID = self.tokenID {
                request.tokenId = tokenID
            } else {
                request.tokenId = try await Self.onlyToken(ctl)
            }
            let job = try await ctl.call(VppV1.SyncService.SyncToken.self, request, notFound: Look.tokens)
            if self.wait {
                try await SyncFollower(ctl: ctl).follow(jobID: job.id)
            } else {
                ctl.printer.record(
                    job,
                    headline: ctl.printer.json ? nil : "Sync queued. Follow it: vppctl jobs watch \(job.id)"
                )
            }
        }
    }

    /// The tenant's token when it holds exactly one.
    static func onlyToken(_ ctl: Ctl) async throws -> String {
        let tokens = try await ctl.call(
            VppV1.TokenService.ListTokens.self,
            VppV1.ListTokensRequest(page: VppV1.PageRequest(pageSize: 2))
        ).tokens
        switch tokens.count {
        case 1:
            ctl.printer.note("Token \(tokens[0].id) (\(tokens[0].displayName))")
            return tokens[0].id
        case 0:
            throw CtlError(
                .failedPrecondition,
                "this tenant holds no token",
                hint:
                    "Upload one first: vppctl tokens upload FILE.vpptoken --apple-id APPLE-ID --account-type education"
            )
        default:
            throw CtlError(
                .invalidArgument,
                "this tenant holds several tokens",
                hint: "Say which: vppctl tokens sync TOKEN-ID (vppctl tokens list shows the ids).",
                exitCode: .usage
            )
        }
    }
}

/// Follows a sync job with WatchSyncJob: a progress bar on stderr while it runs (redrawn in place on a terminal, one
/// line per phase otherwise), then the summary (or the job as JSON) on stdout. A failed job exits 1.
struct SyncFollower {
    let ctl: Ctl

    func follow(jobID: String) async throws {
        let request = VppV1.WatchSyncJobRequest(jobId: jobID)
        let terminal = Terminal.isTerminal(2)
        let draw = terminal || !self.ctl.printer.json
        var last: VppV1.SyncJob?
        var lastLine = ""
        let width = max(10, min(40, Terminal.width(environment: ProcessInfo.processInfo.environment) - 40))
        do {
            // The stream's own deadline is the longest a sync may take to report; updates come at least every few
            // seconds while it runs.
            for try await job in self.ctl.client.stream(
                VppV1.SyncService.WatchSyncJob.self,
                request,
                timeout: .seconds(3600)
            ) {
                last = job
                guard draw else { continue }
                if terminal {
                    Terminal.writeError("\r\u{1B}[2K" + SyncProgress.bar(job, width: width))
                } else {
                    // One line per phase and state, not per item: logs stay short.
                    let line = "sync: \(SyncProgress.stateName(job.state)), \(SyncProgress.phaseName(job.phase))"
                    if line != lastLine { Terminal.writeError(line + "\n") }
                    lastLine = line
                }
            }
        } catch {
            if terminal, draw { Terminal.writeError("\n") }
            throw CtlError.from(error, context: self.ctl.context(notFound: Look.jobs))
        }
        if terminal, draw {
            Terminal.writeError("\r\u{1B}[2K" + (last.map { SyncProgress.bar($0, width: width) } ?? "") + "\n")
        }
        guard let job = last else {
            throw CtlError(.internal, "the server ended WatchSyncJob without a job", exitCode: .other)
        }
        if self.ctl.printer.json {
            print(ProtoJSON.encode(job).rendered())
        } else {
            print(SyncProgress.summary(job))
        }
        if job.state == .failed {
            throw CtlError(
                .failedPrecondition,
                "the sync failed",
                hint: "Its error is above; vppctl tokens show \(job.tokenId) shows the token's state.",
                exitCode: .other
            )
        }
    }
}
