import ArgumentParser
import Foundation
import VPPProto

/// `vppctl licenses …` and `vppctl status …`: LicenseService (R15-R23).
struct LicensesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "licenses",
        abstract: "License usage per app or book, its holders and waiters, install reports, app requests (R15-R23).",
        discussion: "Example: vppctl licenses usage Pages",
        subcommands: [LicensesUsage.self, LicensesList.self, LicensesReport.self, LicensesRequest.self]
    )

    static let entryColumns = [
        Column("SERIAL", "serial_number"), Column("USER", "user_external_id"), Column("ASSET", "asset_id"),
        Column("LICENSE", "license_type"), Column("STATE", "state"), Column("QUEUE", "queue_position"),
        Column("SINCE", "since"), Column("REASON", "reason"),
    ]
}

struct LicensesUsage: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Show an app's or book's licenses: bought, in use, available, waiting, and installs by state.",
        discussion: "Example: vppctl licenses usage 408709785"
    )

    @Argument(help: ArgumentHelp("The asset id, or an adam id or name that names one asset.", valueName: "asset"))
    var asset: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let request = VppV1.GetLicenseUsageRequest(assetId: try await Catalog.resolveAsset(ctl, self.asset))
            ctl.printer.record(
                try await ctl.call(VppV1.LicenseService.GetLicenseUsage.self, request, notFound: Look.assets)
            )
        }
    }
}

struct LicensesList: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List who holds and who waits for an app's or book's licenses, waiters in the order they are served.",
        discussion: "Example: vppctl licenses list Pages --state waiting-for-license"
    )

    @Argument(help: ArgumentHelp("The asset id, or an adam id or name that names one asset.", valueName: "asset"))
    var asset: String
    @Option(help: "Only entries in this install state.") var state: Choice<VppV1.InstallState>?
    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let request = VppV1.ListLicensesRequest(
                page: self.page.request,
                assetId: try await Catalog.resolveAsset(ctl, self.asset),
                state: self.state?.value ?? .unspecified
            )
            let answer = try await ctl.call(VppV1.LicenseService.ListLicenses.self, request, notFound: Look.assets)
            ctl.printer.list(
                answer,
                items: "entries",
                columns: LicensesCommand.entryColumns,
                empty: "No licenses held or waited for."
            )
        }
    }
}

struct LicensesReport: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Report install results from devices (installed, failed, removed; R17 frees licenses on removal).",
        discussion: """
            Columns: serial_number, adam_id, outcome (installed, failed, removed), reason, at (RFC 3339; default now). \
            5,000 per call.
            Example: vppctl licenses report installs.csv
            """
    )

    @Argument(
        help: ArgumentHelp("A .csv or .json file.", valueName: "file"),
        completion: .file(extensions: ["csv", "json"])
    )
    var file: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        let file = try RecordFile.load(
            path: self.file,
            allowed: ["serial_number", "adam_id", "outcome", "reason", "at"]
        )
        let reports = try file.rows.map { row throws(CtlError) -> VppV1.InstallReport in
            var report = VppV1.InstallReport(
                serialNumber: row.fields["serial_number"] ?? "",
                adamId: row.fields["adam_id"] ?? ""
            )
            let outcome = row.fields["outcome"] ?? ""
            guard
                let parsed = Choice<VppV1.InstallOutcome>(
                    argument: outcome.lowercased().replacingOccurrences(of: "install_outcome_", with: "")
                )
            else {
                throw CtlError.badInput(
                    "\(self.file), \(row.location): outcome \"\(outcome)\" is not installed, failed or removed",
                    hint: "Write one of those."
                )
            }
            report.outcome = parsed.value
            report.reason = row.fields["reason"] ?? ""
            if let at = row.fields["at"], !at.isEmpty {
                guard let date = ISO8601DateFormatter().date(from: at) else {
                    throw CtlError.badInput(
                        "\(self.file), \(row.location): at \"\(at)\" is not a time",
                        hint: "Write it like 2026-11-24T09:30:00Z."
                    )
                }
                report.at = VppV1.Timestamp(seconds: Int64(date.timeIntervalSince1970))
            }
            return report
        }
        try await Ctl.run(self.connection, self.output) { ctl in
            var total = VppV1.ReportInstallResultsResponse()
            for batch in batches(reports) {
                let answer = try await ctl.call(
                    VppV1.LicenseService.ReportInstallResults.self,
                    VppV1.ReportInstallResultsRequest(reports: Array(batch))
                )
                total.applied += answer.applied
                total.freedLicenses += answer.freedLicenses
                total.errors += answer.errors
            }
            ctl.printer.result(
                "Applied \(total.applied) reports; \(total.freedLicenses) licenses freed"
                    + (total.errors.isEmpty ? "." : "; \(total.errors.count) refused:"),
                json: ProtoJSON.encode(total)
            )
            guard total.errors.isEmpty else {
                for error in total.errors { Terminal.writeError("  \(error)\n") }
                throw CtlError(
                    .invalidArgument,
                    "\(total.errors.count) reports were refused",
                    hint: "Fix them and report them again."
                )
            }
        }
    }
}

struct LicensesRequest: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "request",
        abstract: "Ask for an Available app on a user's behalf; a license is handed out if one is left (R21).",
        discussion: "Example: vppctl licenses request Keynote --user alice"
    )

    @Argument(help: ArgumentHelp("The asset id, or an adam id or name that names one asset.", valueName: "asset"))
    var asset: String
    @Option(help: "The user's external id.") var user: String
    @Option(help: "The device to install on (device licensing).") var serial: String?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let request = VppV1.RequestAppRequest(
                assetId: try await Catalog.resolveAsset(ctl, self.asset),
                userExternalId: self.user,
                serialNumber: self.serial ?? ""
            )
            ctl.printer.record(
                try await ctl.call(VppV1.LicenseService.RequestApp.self, request, notFound: Look.assignments)
            )
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Every app and book assigned to a user or a device, its install state and why (R23).",
        discussion: "Example: vppctl status user alice",
        subcommands: [StatusUser.self, StatusDevice.self]
    )
}

struct StatusUser: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract:
            "Show a user's apps and books: installed, pending, waiting for a license or invitation, failed (R23).",
        discussion: "Example: vppctl status user alice"
    )

    @Argument(help: ArgumentHelp("The user's external id.", valueName: "external-id")) var user: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            try await StatusPrinter.print(
                ctl,
                try await ctl.call(
                    VppV1.LicenseService.GetUserStatus.self,
                    VppV1.GetUserStatusRequest(externalId: self.user),
                    notFound: Look.users
                )
            )
        }
    }
}

struct StatusDevice: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Show a device's apps and books and their install state (R23).",
        discussion: "Example: vppctl status device C02XK1ABJG5J"
    )

    @Argument(help: ArgumentHelp("The serial number.", valueName: "serial")) var serial: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            try await StatusPrinter.print(
                ctl,
                try await ctl.call(
                    VppV1.LicenseService.GetDeviceStatus.self,
                    VppV1.GetDeviceStatusRequest(serialNumber: self.serial),
                    notFound: Look.devices
                )
            )
        }
    }
}

enum StatusPrinter {
    /// A table of the target's entries, each named by its app or book (one GetAsset per distinct asset).
    static func print(_ ctl: Ctl, _ status: VppV1.TargetStatus) async throws {
        if ctl.printer.json {
            Swift.print(ProtoJSON.encode(status).rendered())
            return
        }
        var names: [String: String] = [:]
        for assetID in Set(status.entries.map(\.assetId)) {
            let request = VppV1.GetAssetRequest(assetId: assetID)
            names[assetID] = (try? await ctl.call(VppV1.CatalogService.GetAsset.self, request))?.name
        }
        var lines: [String] = []
        let items = status.entries.map { entry -> JSONValue in
            guard case .object(var fields) = ProtoJSON.encode(entry) else { return .null }
            fields.insert(.init("name", .string(names[entry.assetId] ?? "")), at: 0)
            return .object(fields)
        }
        if !items.isEmpty {
            lines.append(
                Table(
                    columns: [
                        Column("APP OR BOOK", "name"), Column("ASSET", "asset_id"), Column("LICENSE", "license_type"),
                        Column("STATE", "state"),
                        Column("QUEUE", "queue_position"), Column("SINCE", "since"), Column("REASON", "reason"),
                    ],
                    items: items
                ).render(colour: ctl.printer.colour)
            )
        } else {
            lines.append("Nothing is assigned to \(status.key).")
        }
        for note in status.notes { lines.append("note: \(note)") }
        Swift.print(lines.joined(separator: "\n"))
    }
}

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "The audit logs: every mutating call, who made it and how it ended.",
        discussion: "Example: vppctl audit list --method /vpp.v1.TokenService/UploadToken",
        subcommands: [AuditList.self, AuditOperator.self]
    )

    static let columns = [
        Column("TIME", "time"), Column("PRINCIPAL", "principal"), Column("METHOD", "method"),
        Column("TARGET", "target"),
        Column("RESULT", "result"), Column("MESSAGE", "message"),
    ]
}

struct AuditFilter: ParsableArguments {
    @Option(help: "Only events about this target, e.g. token:<id>.") var target: String?
    @Option(help: "Only events of this method, e.g. /vpp.v1.TokenService/UploadToken.") var method: String?
}

struct AuditList: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the tenant's audit events (tenant key).",
        discussion: "Example: vppctl audit list --target token:6f1c2a9e-…"
    )

    @OptionGroup var filter: AuditFilter
    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let request = VppV1.ListAuditEventsRequest(
                page: self.page.request,
                target: self.filter.target ?? "",
                method: self.filter.method ?? ""
            )
            let answer = try await ctl.call(VppV1.AuditService.ListAuditEvents.self, request)
            ctl.printer.list(answer, items: "events", columns: AuditCommand.columns, empty: "No audit events.")
        }
    }
}

struct AuditOperator: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "operator",
        abstract: "List the platform operators' audit events (operator key).",
        discussion: "Example: vppctl audit operator --method /vpp.v1.OperatorService/CreateTenant"
    )

    @OptionGroup var filter: AuditFilter
    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let request = VppV1.ListOperatorAuditEventsRequest(
                page: self.page.request,
                target: self.filter.target ?? "",
                method: self.filter.method ?? ""
            )
            let answer = try await ctl.call(VppV1.OperatorService.ListOperatorAuditEvents.self, request)
            ctl.printer.list(answer, items: "events", columns: AuditCommand.columns, empty: "No audit events.")
        }
    }
}
