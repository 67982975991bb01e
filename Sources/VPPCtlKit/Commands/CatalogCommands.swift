import ArgumentParser
import VPPProto

/// `vppctl apps …` and `vppctl books …`: CatalogService (R8, R9, R11, R12).
struct AppsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apps",
        abstract: "List the apps bought with the tenant's tokens and their license counts (R8, R11).",
        discussion: "Example: vppctl apps list --query pages",
        subcommands: [AppsList.self, AssetShow.self, AssetCounts.self, AppsSkipped.self]
    )
}

struct BooksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "books",
        abstract: "List the books bought with the tenant's tokens and their license counts (R12).",
        discussion: "Example: vppctl books list",
        subcommands: [BooksList.self, AssetShow.self, AssetCounts.self]
    )
}

enum Catalog {
    static let columns = [
        Column("ID", "id"), Column("NAME", "name"), Column("ADAM ID", "adam_id"), Column("TOKEN", "token_id"),
        Column("TOTAL", "counts.total"), Column("IN USE", "counts.in_use"), Column("AVAILABLE", "counts.available"),
        Column("WAITING", "counts.waiting"),
    ]

    /// An asset given by our id, or by Apple's adam id or a name when that names exactly one asset. An app bought
    /// with two tokens is two assets (R11): then the id is needed, and the message lists the candidates.
    static func resolveAsset(_ ctl: Ctl, _ reference: String) async throws -> String {
        if Self.looksLikeID(reference) { return reference }
        let request = VppV1.ListAssetsRequest(page: VppV1.PageRequest(pageSize: 20), query: reference)
        var found = try await ctl.call(VppV1.CatalogService.ListApps.self, request).assets
        found += try await ctl.call(VppV1.CatalogService.ListBooks.self, request).assets
        // An exact adam id or name beats a substring of a longer name.
        let exact = found.filter { $0.adamId == reference || $0.name.lowercased() == reference.lowercased() }
        if exact.count == 1 { return exact[0].id }
        if found.count == 1 { return found[0].id }
        if found.isEmpty {
            throw CtlError(.notFound, "no app or book matches \"\(reference)\"", hint: Look.assets)
        }
        let candidates = (exact.isEmpty ? found : exact).prefix(5).map { "\($0.id) (\($0.name), token \($0.tokenId))" }
        throw CtlError(
            .invalidArgument,
            "\"\(reference)\" matches \(exact.isEmpty ? found.count : exact.count) apps and books",
            hint: "Give the asset id instead, e.g. " + candidates.joined(separator: ", ") + ".",
            exitCode: .usage
        )
    }

    /// Our ids are UUIDs.
    static func looksLikeID(_ text: String) -> Bool {
        text.count == 36 && text.filter { $0 == "-" }.count == 4 && text.allSatisfy { $0.isHexDigit || $0 == "-" }
    }
}

struct AppsList: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List apps with licenses bought, in use, available and waiting.",
        discussion: "Example: vppctl apps list --available"
    )

    @OptionGroup var filter: AssetFilter
    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let answer = try await ctl.call(
                VppV1.CatalogService.ListApps.self,
                self.filter.request(self.page),
                notFound: Look.tokens
            )
            ctl.printer.list(
                answer,
                items: "assets",
                columns: Catalog.columns,
                empty: "No apps. Has a token synced? vppctl tokens list"
            )
        }
    }
}

struct BooksList: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List books with licenses bought, in use, available and waiting.",
        discussion: "Example: vppctl books list"
    )

    @OptionGroup var filter: AssetFilter
    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let answer = try await ctl.call(
                VppV1.CatalogService.ListBooks.self,
                self.filter.request(self.page),
                notFound: Look.tokens
            )
            ctl.printer.list(
                answer,
                items: "assets",
                columns: Catalog.columns,
                empty: "No books. Has a token synced? vppctl tokens list"
            )
        }
    }
}

struct AssetFilter: ParsableArguments {
    @Option(name: .customLong("token"), help: "Only this token's.")
    var tokenID: String?

    @Option(help: "A substring of the name, or an exact adam id.")
    var query: String?

    @Flag(name: .customLong("available"), help: "Only those with licenses left.")
    var onlyAvailable = false

    func request(_ page: PageOptions) -> VppV1.ListAssetsRequest {
        VppV1.ListAssetsRequest(
            page: page.request,
            tokenId: self.tokenID ?? "",
            query: self.query ?? "",
            onlyAvailable: self.onlyAvailable
        )
    }
}

struct AssetShow: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one app or book: ids, platforms, license counts.",
        discussion: "Example: vppctl apps show 408709785   (an asset id, an adam id or a name)"
    )

    @Argument(help: ArgumentHelp("The asset id, or an adam id or name that names one asset.", valueName: "asset"))
    var asset: String

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let request = VppV1.GetAssetRequest(assetId: try await Catalog.resolveAsset(ctl, self.asset))
            ctl.printer.record(try await ctl.call(VppV1.CatalogService.GetAsset.self, request, notFound: Look.assets))
        }
    }
}

struct AssetCounts: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "counts",
        abstract: "Show an app's or book's license counts (bought, in use, available, reserved, waiting; R8, R15).",
        discussion: "Example: vppctl apps counts 408709785"
    )

    @Argument(help: ArgumentHelp("The asset id, or an adam id or name that names one asset.", valueName: "asset"))
    var asset: String

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let request = VppV1.GetLicenseCountsRequest(assetId: try await Catalog.resolveAsset(ctl, self.asset))
            ctl.printer.record(
                try await ctl.call(VppV1.CatalogService.GetLicenseCounts.self, request, notFound: Look.assets)
            )
        }
    }
}

struct AppsSkipped: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "skipped",
        abstract: "List custom B2B apps the sync skipped, and why (R9).",
        discussion: "Example: vppctl apps skipped"
    )

    @Option(name: .customLong("token"), help: "Only this token's.")
    var tokenID: String?

    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let answer = try await ctl.call(
                VppV1.CatalogService.ListSkippedAssets.self,
                VppV1.ListSkippedAssetsRequest(page: self.page.request, tokenId: self.tokenID ?? ""),
                notFound: Look.tokens
            )
            ctl.printer.list(
                answer,
                items: "assets",
                columns: [
                    Column("ADAM ID", "adam_id"), Column("TOKEN", "token_id"), Column("TOTAL", "total"),
                    Column("SEEN", "seen_at"), Column("REASON", "reason"),
                ],
                empty: "No apps were skipped."
            )
        }
    }
}
