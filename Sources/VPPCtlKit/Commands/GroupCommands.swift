import ArgumentParser
import VPPProto

/// `vppctl groups …`: DirectoryService's groups and membership (R13, R14).
struct GroupsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groups",
        abstract: "User and device groups and their members: the targets of assignments (R13, R14).",
        discussion: "Example: vppctl groups create year-7 --name \"Year 7\" --kind user",
        subcommands: [
            GroupsCreate.self, GroupsList.self, GroupsShow.self, GroupsUpdate.self, GroupsDelete.self,
            GroupsAddMembers.self, GroupsRemoveMembers.self, GroupsMembers.self,
        ]
    )

    static let columns = [
        Column("ID", "id"), Column("EXTERNAL ID", "external_id"), Column("NAME", "name"), Column("KIND", "kind"),
        Column("MEMBERS", "member_count"),
    ]
}

struct GroupsCreate: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a user group or a device group (device groups: R14).",
        discussion: "Example: vppctl groups create year-7 --name \"Year 7\" --kind user"
    )

    @Argument(help: ArgumentHelp("The group's id in the tenant's directory.", valueName: "external-id")) var externalID:
        String
    @Option(help: "Its name (1 to 200 characters; default: the external id).") var name: String?
    @Option(help: "user or device; fixed once created.") var kind: Choice<VppV1.GroupKind> = Choice(.user)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let group = try await ctl.call(
                VppV1.DirectoryService.CreateGroup.self,
                VppV1.CreateGroupRequest(
                    externalId: self.externalID,
                    name: self.name ?? self.externalID,
                    kind: self.kind.value
                ),
                hints: [
                    .alreadyExists:
                        "Use it as it is (vppctl groups show \(self.externalID)) or pick another external id."
                ]
            )
            ctl.printer.record(group, headline: "Created.")
        }
    }
}

struct GroupsList: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List groups with their kind and member count.",
        discussion: "Example: vppctl groups list --kind device"
    )

    @Option(help: "A substring of the name or external id.") var query: String?
    @Option(help: "Only user or only device groups.") var kind: Choice<VppV1.GroupKind>?
    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let request = VppV1.ListGroupsRequest(
                page: self.page.request,
                query: self.query ?? "",
                kind: self.kind?.value ?? .unspecified
            )
            let answer = try await ctl.call(VppV1.DirectoryService.ListGroups.self, request)
            ctl.printer.list(
                answer,
                items: "groups",
                columns: GroupsCommand.columns,
                empty: "No groups. Create one: vppctl groups create EXTERNAL-ID --name NAME"
            )
        }
    }
}

struct GroupsShow: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one group, by external id or id.",
        discussion: "Example: vppctl groups show year-7"
    )

    @Argument(help: ArgumentHelp("The group's external id or id.", valueName: "group")) var group: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            ctl.printer.record(try await Directory.group(ctl, self.group))
        }
    }
}

struct GroupsUpdate: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Rename a group.",
        discussion: "Example: vppctl groups update year-7 --name \"Year 7 (2026)\""
    )

    @Argument(help: ArgumentHelp("The group's external id or id.", valueName: "group")) var group: String
    @Option(help: "The new name.") var name: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let request = VppV1.UpdateGroupRequest(
                groupId: try await Directory.group(ctl, self.group).id,
                name: VppV1.StringValue(value: self.name)
            )
            ctl.printer.record(
                try await ctl.call(VppV1.DirectoryService.UpdateGroup.self, request, notFound: Look.groups)
            )
        }
    }
}

struct GroupsDelete: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a group and its membership.",
        discussion: "Example: vppctl groups delete year-7 --yes"
    )

    @Argument(help: ArgumentHelp("The group's external id or id.", valueName: "group")) var group: String
    @Flag(help: "Confirm.") var yes = false
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    mutating func validate() throws {
        guard self.yes else { throw ValidationError("Deleting a group removes its membership. Add --yes to confirm.") }
    }

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let request = VppV1.DeleteGroupRequest(groupId: try await Directory.group(ctl, self.group).id)
            let answer = try await ctl.call(VppV1.DirectoryService.DeleteGroup.self, request, notFound: Look.groups)
            ctl.printer.result("Deleted group \(self.group).", json: ProtoJSON.encode(answer))
        }
    }
}

/// Adds or removes members, 5,000 per call.
enum GroupMembership {
    static func change<Method: ProtoMethod>(
        _ ctl: Ctl,
        group reference: String,
        keys: [String],
        method: Method.Type,
        verb: String
    ) async throws where Method.Request == VppV1.GroupMembersRequest, Method.Response == VppV1.GroupMembersResponse {
        let group = try await Directory.group(ctl, reference)
        var total = VppV1.GroupMembersResponse()
        for (batchIndex, batch) in batches(keys).enumerated() {
            let request = VppV1.GroupMembersRequest(groupId: group.id, memberKeys: Array(batch))
            let answer = try await ctl.call(method, request, notFound: Look.groups)
            total.changed += answer.changed
            total.unchanged += answer.unchanged
            total.errors += answer.errors.map { error in
                var error = error
                error.index += UInt32(batchIndex * DirectoryRows.batchSize)
                return error
            }
        }
        ctl.printer.result(
            "\(verb) \(total.changed) members of \(group.externalId) (\(total.unchanged) unchanged"
                + (total.errors.isEmpty ? ")." : ", \(total.errors.count) refused):"),
            json: ProtoJSON.encode(total)
        )
        guard total.errors.isEmpty else {
            for error in total.errors { Terminal.writeError("  \(error.key): \(error.message)\n") }
            let kind =
                group.kind == .device
                ? "devices' serial numbers (vppctl devices list)" : "users' external ids (vppctl users list)"
            throw CtlError(
                .invalidArgument,
                "\(total.errors.count) members were refused",
                hint: "A \(Choice<VppV1.GroupKind>.name(group.kind)) group takes \(kind)."
            )
        }
    }
}

struct GroupsAddMembers: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "add-members",
        abstract: "Add users (user group) or devices (device group) to a group, by external id or serial number.",
        discussion: "Example: vppctl groups add-members year-7 alice bob   or   --file class-list.csv"
    )

    @Argument(help: ArgumentHelp("The group's external id or id.", valueName: "group")) var group: String
    @Argument(help: ArgumentHelp("Users' external ids or devices' serial numbers.", valueName: "member")) var members:
        [String] = []
    @Option(
        help: "A CSV or JSON file with an external_id or serial_number column.",
        completion: .file(extensions: ["csv", "json"])
    ) var file: String?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        let keys = try Directory.keys(self.members, file: self.file)
        try await Ctl.run(self.connection, self.output) { ctl in
            try await GroupMembership.change(
                ctl,
                group: self.group,
                keys: keys,
                method: VppV1.DirectoryService.AddGroupMembers.self,
                verb: "Added"
            )
        }
    }
}

struct GroupsRemoveMembers: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-members",
        abstract: "Remove members from a group.",
        discussion: "Example: vppctl groups remove-members year-7 bob"
    )

    @Argument(help: ArgumentHelp("The group's external id or id.", valueName: "group")) var group: String
    @Argument(help: ArgumentHelp("Users' external ids or devices' serial numbers.", valueName: "member")) var members:
        [String] = []
    @Option(
        help: "A CSV or JSON file with an external_id or serial_number column.",
        completion: .file(extensions: ["csv", "json"])
    ) var file: String?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        let keys = try Directory.keys(self.members, file: self.file)
        try await Ctl.run(self.connection, self.output) { ctl in
            try await GroupMembership.change(
                ctl,
                group: self.group,
                keys: keys,
                method: VppV1.DirectoryService.RemoveGroupMembers.self,
                verb: "Removed"
            )
        }
    }
}

struct GroupsMembers: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "members",
        abstract: "List a group's members' keys.",
        discussion: "Example: vppctl groups members year-7"
    )

    @Argument(help: ArgumentHelp("The group's external id or id.", valueName: "group")) var group: String
    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let request = VppV1.ListGroupMembersRequest(
                page: self.page.request,
                groupId: try await Directory.group(ctl, self.group).id
            )
            let answer = try await ctl.call(
                VppV1.DirectoryService.ListGroupMembers.self,
                request,
                notFound: Look.groups
            )
            if ctl.printer.json {
                print(ProtoJSON.encode(answer).rendered())
            } else {
                print(answer.memberKeys.isEmpty ? "No members." : answer.memberKeys.joined(separator: "\n"))
                if let next = answer.page?.nextPageToken, !next.isEmpty {
                    Terminal.writeError("More on the next page: add --page-token \(next)\n")
                }
            }
        }
    }
}
