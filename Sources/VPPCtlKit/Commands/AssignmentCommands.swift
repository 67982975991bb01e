import ArgumentParser
import VPPProto

/// `vppctl assignments …`: AssignmentService (R13-R17).
struct AssignmentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assignments",
        abstract: "Assign apps and books to groups as Required, Available or Uninstall (R13-R17).",
        discussion: "Example: vppctl assignments create --asset Pages --group year-7 --action required",
        subcommands: [
            AssignmentsCreate.self, AssignmentsList.self, AssignmentsShow.self, AssignmentsUpdate.self,
            AssignmentsDelete.self,
        ]
    )

    static let columns = [
        Column("ID", "id"), Column("ASSET", "asset_id"), Column("GROUP", "group_id"), Column("ACTION", "action"),
        Column("LICENSE", "license_type"), Column("TARGETS", "targets"), Column("GRANTED", "granted"),
        Column("WAITING", "waiting"), Column("INSTALLED", "installed"), Column("FAILED", "failed"),
    ]
}

struct AssignmentsCreate: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Assign an app or book to a group; licenses follow, never more than were bought (R15).",
        discussion: """
            Books can only be Required (R13); device groups need R14. --license defaults to user licensing for a \
            user group and device licensing for a device group. Targets that cannot get a license wait (R15).
            Example: vppctl assignments create --asset 408709785 --group year-7 --action required
            """
    )

    @Option(help: "The app or book: asset id, adam id or name (vppctl apps list).") var asset: String
    @Option(help: "The group: external id or id (vppctl groups list).") var group: String
    @Option(help: "What the assignment does.") var action: Choice<VppV1.AssignmentAction> = Choice(.required)
    @Option(name: .customLong("license"), help: "Who holds the license (default: by the group's kind).")
    var licenseType: Choice<VppV1.LicenseType>?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let assetID = try await Catalog.resolveAsset(ctl, self.asset)
            let group = try await Directory.group(ctl, self.group)
            let request = VppV1.CreateAssignmentRequest(
                assetId: assetID,
                groupId: group.id,
                action: self.action.value,
                licenseType: self.licenseType?.value ?? (group.kind == .device ? .device : .user)
            )
            let assignment = try await ctl.call(
                VppV1.AssignmentService.CreateAssignment.self,
                request,
                notFound: Look.assets
            )
            ctl.printer.record(assignment, headline: "Assigned to \(group.name) (\(group.externalId)).")
        }
    }
}

struct AssignmentsList: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List assignments with their targets and licenses granted, waiting, installed and failed.",
        discussion: "Example: vppctl assignments list --group year-7"
    )

    @Option(help: "Only this app's or book's (asset id, adam id or name).") var asset: String?
    @Option(help: "Only this group's (external id or id).") var group: String?
    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            var request = VppV1.ListAssignmentsRequest(page: self.page.request)
            if let asset = self.asset { request.assetId = try await Catalog.resolveAsset(ctl, asset) }
            if let group = self.group { request.groupId = try await Directory.group(ctl, group).id }
            let answer = try await ctl.call(VppV1.AssignmentService.ListAssignments.self, request)
            ctl.printer.list(
                answer,
                items: "assignments",
                columns: AssignmentsCommand.columns,
                empty: "No assignments. Create one: vppctl assignments create --asset APP --group GROUP"
            )
        }
    }
}

struct AssignmentsShow: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one assignment and how its licenses stand.",
        discussion: "Example: vppctl assignments show 5d0e…"
    )

    @Argument(help: ArgumentHelp("The assignment's id (vppctl assignments list).", valueName: "assignment-id"))
    var assignmentID: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.show(
            self.connection,
            self.output,
            VppV1.AssignmentService.GetAssignment.self,
            VppV1.GetAssignmentRequest(assignmentId: self.assignmentID),
            notFound: Look.assignments
        )
    }
}

struct AssignmentsUpdate: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Change an assignment's action; uninstall frees licenses once the app is removed (R17).",
        discussion: "Example: vppctl assignments update 5d0e… --action uninstall"
    )

    @Argument(help: ArgumentHelp("The assignment's id.", valueName: "assignment-id")) var assignmentID: String
    @Option(help: "The new action.") var action: Choice<VppV1.AssignmentAction>
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.show(
            self.connection,
            self.output,
            VppV1.AssignmentService.UpdateAssignment.self,
            VppV1.UpdateAssignmentRequest(assignmentId: self.assignmentID, action: self.action.value),
            notFound: Look.assignments
        )
    }
}

struct AssignmentsDelete: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete an assignment; its licenses are released by the tenant's reclaim policy.",
        discussion: "Example: vppctl assignments delete 5d0e… --yes"
    )

    @Argument(help: ArgumentHelp("The assignment's id.", valueName: "assignment-id")) var assignmentID: String
    @Flag(help: "Confirm.") var yes = false
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    mutating func validate() throws {
        guard self.yes else {
            throw ValidationError(
                "Deleting an assignment releases its licenses. Add --yes to confirm (or update it to --action uninstall)."
            )
        }
    }

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let answer = try await ctl.call(
                VppV1.AssignmentService.DeleteAssignment.self,
                VppV1.DeleteAssignmentRequest(assignmentId: self.assignmentID),
                notFound: Look.assignments
            )
            ctl.printer.result(
                "Deleted: \(answer.released) licenses released, \(answer.pendingRelease) released once the app is removed.",
                json: ProtoJSON.encode(answer)
            )
        }
    }
}
