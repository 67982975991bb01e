import ArgumentParser
import VPPProto

/// Lookups and bulk helpers shared by the users, devices and groups commands (DirectoryService).
enum Directory {
    /// An entry by its key (external id, serial number) or, failing that, by our id.
    static func entry(_ reference: String) -> [VppV1.GetEntryRequest] {
        let byKey = VppV1.GetEntryRequest(by: .key(reference))
        guard Catalog.looksLikeID(reference) else { return [byKey] }
        return [byKey, VppV1.GetEntryRequest(by: .id(reference))]
    }

    /// Tries each lookup in turn; NOT_FOUND from all of them is reported once, with `notFound` as advice.
    static func get<Method: ProtoMethod>(
        _ ctl: Ctl,
        _ method: Method.Type,
        _ reference: String,
        notFound: String
    ) async throws -> Method.Response where Method.Request == VppV1.GetEntryRequest {
        let lookups = Self.entry(reference)
        for (index, request) in lookups.enumerated() {
            do {
                return try await ctl.call(method, request, notFound: notFound)
            } catch let error as CtlError where error.code == .notFound && index < lookups.count - 1 {
                continue
            }
        }
        throw CtlError(.notFound, "no entry \(reference)", hint: notFound)
    }

    static func group(_ ctl: Ctl, _ reference: String) async throws -> VppV1.Group {
        try await Self.get(ctl, VppV1.DirectoryService.GetGroup.self, reference, notFound: Look.groups)
    }

    /// Adds members to groups by the groups' external ids (the `groups` column of an import), in batches.
    static func addMemberships(_ ctl: Ctl, _ memberships: [String: [String]]) async throws -> (
        changed: Int, errors: [String]
    ) {
        var changed = 0
        var errors: [String] = []
        for (groupKey, members) in memberships.sorted(by: { $0.key < $1.key }) {
            let group = try await Self.group(ctl, groupKey)
            for batch in batches(members) {
                let answer = try await ctl.call(
                    VppV1.DirectoryService.AddGroupMembers.self,
                    VppV1.GroupMembersRequest(groupId: group.id, memberKeys: Array(batch)),
                    notFound: Look.groups
                )
                changed += Int(answer.changed)
                errors += answer.errors.map { "group \(groupKey), \($0.key): \($0.message)" }
            }
        }
        return (changed, errors)
    }

    /// Prints what a bulk upsert did; refused entries go to stderr, one line each, and make the command exit 5.
    static func reportUpsert(
        _ ctl: Ctl,
        noun: String,
        path: String,
        total: VppV1.UpsertResponse,
        memberships: Int,
        errors: [String]
    ) throws {
        var sentence =
            "Imported \(path): \(total.created) \(noun) created, \(total.updated) updated, "
            + "\(total.unchanged) unchanged"
        if memberships > 0 { sentence += ", \(memberships) group memberships added" }
        sentence += errors.isEmpty ? "." : ", \(errors.count) refused:"
        var json = ProtoJSON.encode(total)
        if case .object(var fields) = json {
            fields.append(.init("group_memberships_added", .uint(UInt64(memberships))))
            fields.append(.init("refused", .array(errors.map { .string($0) })))
            json = .object(fields)
        }
        ctl.printer.result(sentence, json: json)
        guard errors.isEmpty else {
            for error in errors { Terminal.writeError("  \(error)\n") }
            throw CtlError(
                .invalidArgument,
                "\(errors.count) entries were refused",
                hint: "Fix them and import the file again; the rest were applied."
            )
        }
    }

    /// Keys from arguments and/or a file, for deletes and membership changes.
    static func keys(_ arguments: [String], file: String?) throws -> [String] {
        var keys = arguments
        if let file {
            keys += try DirectoryRows.memberKeys(
                RecordFile.load(
                    path: file,
                    allowed: Set(["external_id", "serial_number", "key"]).union(DirectoryRows.userColumns).union(
                        DirectoryRows.deviceColumns
                    ).union(DirectoryRows.outputOnlyColumns)
                )
            )
        }
        guard !keys.isEmpty else {
            throw ValidationError("Give at least one key, or --file FILE.")
        }
        return keys
    }
}

// MARK: Users

struct UsersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users",
        abstract: "The tenant's users: import from CSV or JSON, add, list, show, delete (R19, R20).",
        discussion: "Example: vppctl users import users.csv",
        subcommands: [UsersImport.self, UsersAdd.self, UsersList.self, UsersShow.self, UsersDelete.self]
    )

    static let columns = [
        Column("EXTERNAL ID", "external_id"), Column("NAME", "display_name"), Column("EMAIL", "email"),
        Column("APPLE ID", "apple_id"), Column("VPP", "vpp_state"), Column("DEVICES", "device_count"),
        Column("APP STORE OFF", "app_store_disabled"),
    ]
}

struct UsersImport: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Create or update users from a CSV or JSON file, 5,000 per call; optionally add them to groups.",
        discussion: """
            Columns (CSV header or JSON keys): external_id (required), email, apple_id, display_name, \
            app_store_disabled (true/false, R20), groups (user groups' external ids, separated by ; or spaces; the \
            groups must exist). Users already there are updated. Refused entries are listed; the rest are applied.
            Example: vppctl users import Deploy/local/demo-users.csv
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
        let rows = try DirectoryRows.users(
            RecordFile.load(path: self.file, allowed: DirectoryRows.userColumns.union(DirectoryRows.outputOnlyColumns))
        )
        try await Ctl.run(self.connection, self.output) { ctl in
            var total = VppV1.UpsertResponse()
            var errors: [String] = []
            for (batchIndex, batch) in batches(rows).enumerated() {
                let answer = try await ctl.call(
                    VppV1.DirectoryService.UpsertUsers.self,
                    VppV1.UpsertUsersRequest(users: batch.map { $0.input })
                )
                total.created += answer.created
                total.updated += answer.updated
                total.unchanged += answer.unchanged
                errors += answer.errors.map {
                    "entry \(batchIndex * DirectoryRows.batchSize + Int($0.index) + 1) (\($0.key)): \($0.message)"
                }
            }
            var memberships: [String: [String]] = [:]
            for row in rows { for group in row.groups { memberships[group, default: []].append(row.input.externalId) } }
            let added = try await Directory.addMemberships(ctl, memberships)
            try Directory.reportUpsert(
                ctl,
                noun: "users",
                path: self.file,
                total: total,
                memberships: added.changed,
                errors: errors + added.errors
            )
        }
    }
}

struct UsersAdd: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Create or update one user.",
        discussion: "Example: vppctl users add alice --email alice@school.example --name \"Alice Martin\""
    )

    @Argument(help: ArgumentHelp("The user's id in the tenant's directory.", valueName: "external-id"))
    var externalID: String
    @Option(help: "E-mail address.") var email: String?
    @Option(help: "Apple ID or Managed Apple ID (R19).") var appleId: String?
    @Option(help: "Display name.") var name: String?
    @Flag(help: "A policy disables the App Store app for this user (R20).") var appStoreDisabled = false
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let user = VppV1.UserInput(
                externalId: self.externalID,
                email: self.email ?? "",
                appleId: self.appleId ?? "",
                displayName: self.name ?? "",
                appStoreDisabled: self.appStoreDisabled
            )
            let answer = try await ctl.call(
                VppV1.DirectoryService.UpsertUsers.self,
                VppV1.UpsertUsersRequest(users: [user])
            )
            let errors = answer.errors.map { "\($0.key): \($0.message)" }
            try Directory.reportUpsert(
                ctl,
                noun: "users",
                path: "user \(self.externalID)",
                total: answer,
                memberships: 0,
                errors: errors
            )
        }
    }
}

struct UsersList: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List users, optionally those matching a query or in a group.",
        discussion: "Example: vppctl users list --group year-7"
    )

    @Option(help: "A substring of the external id, e-mail or name.") var query: String?
    @Option(help: "Only members of this group (id or external id).") var group: String?
    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            var request = VppV1.ListUsersRequest(page: self.page.request, query: self.query ?? "")
            if let group = self.group { request.groupId = try await Directory.group(ctl, group).id }
            let answer = try await ctl.call(VppV1.DirectoryService.ListUsers.self, request, notFound: Look.groups)
            ctl.printer.list(
                answer,
                items: "users",
                columns: UsersCommand.columns,
                empty: "No users. Import some: vppctl users import FILE.csv"
            )
        }
    }
}

struct UsersShow: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one user, by external id or id.",
        discussion: "Example: vppctl users show alice"
    )

    @Argument(help: ArgumentHelp("The user's external id or id.", valueName: "user")) var user: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            ctl.printer.record(
                try await Directory.get(ctl, VppV1.DirectoryService.GetUser.self, self.user, notFound: Look.users)
            )
        }
    }
}

struct UsersDelete: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete users by external id (their devices stay, without an owner).",
        discussion: "Example: vppctl users delete alice bob   or   vppctl users delete --file leavers.csv"
    )

    @Argument(help: ArgumentHelp("External ids.", valueName: "external-id")) var keys: [String] = []
    @Option(help: "A CSV or JSON file with an external_id column.", completion: .file(extensions: ["csv", "json"]))
    var file: String?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        let keys = try Directory.keys(self.keys, file: self.file)
        try await Ctl.run(self.connection, self.output) { ctl in
            try await DeleteEntries.run(ctl, keys: keys, noun: "users", method: VppV1.DirectoryService.DeleteUsers.self)
        }
    }
}

enum DeleteEntries {
    static func run<Method: ProtoMethod>(_ ctl: Ctl, keys: [String], noun: String, method: Method.Type) async throws
    where Method.Request == VppV1.DeleteEntriesRequest, Method.Response == VppV1.DeleteEntriesResponse {
        var total = VppV1.DeleteEntriesResponse()
        for batch in batches(keys) {
            let answer = try await ctl.call(method, VppV1.DeleteEntriesRequest(keys: Array(batch)))
            total.deleted += answer.deleted
            total.notFound += answer.notFound
        }
        ctl.printer.result(
            "Deleted \(total.deleted) \(noun); \(total.notFound) not found.",
            json: ProtoJSON.encode(total)
        )
    }
}

// MARK: Devices

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "The tenant's devices: import from CSV or JSON, add, list, show, delete (R18, R22).",
        discussion: "Example: vppctl devices import devices.json",
        subcommands: [DevicesImport.self, DevicesAdd.self, DevicesList.self, DevicesShow.self, DevicesDelete.self]
    )

    static let columns = [
        Column("SERIAL", "serial_number"), Column("NAME", "name"), Column("OWNER", "owner_external_id"),
        Column("ENROLLMENT", "enrollment"), Column("MODEL", "model"), Column("OS", "os_version"),
        Column("BOOKS APP", "books_app_present"),
    ]
}

struct DevicesImport: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Create or update devices from a CSV or JSON file, 5,000 per call; optionally add them to groups.",
        discussion: """
            Columns: serial_number (required), owner_external_id, enrollment (user-affiliated, automated, \
            apple-configurator; default: user-affiliated with an owner, automated without; R18), books_app_present \
            (default true; R22), name, model, os_version, groups (device groups' external ids, ; or space separated).
            Example: vppctl devices import devices.csv
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
        let rows = try DirectoryRows.devices(
            RecordFile.load(
                path: self.file,
                allowed: DirectoryRows.deviceColumns.union(DirectoryRows.outputOnlyColumns)
            )
        )
        try await Ctl.run(self.connection, self.output) { ctl in
            var total = VppV1.UpsertResponse()
            var errors: [String] = []
            for (batchIndex, batch) in batches(rows).enumerated() {
                let answer = try await ctl.call(
                    VppV1.DirectoryService.UpsertDevices.self,
                    VppV1.UpsertDevicesRequest(devices: batch.map { $0.input })
                )
                total.created += answer.created
                total.updated += answer.updated
                total.unchanged += answer.unchanged
                errors += answer.errors.map {
                    "entry \(batchIndex * DirectoryRows.batchSize + Int($0.index) + 1) (\($0.key)): \($0.message)"
                }
            }
            var memberships: [String: [String]] = [:]
            for row in rows {
                for group in row.groups { memberships[group, default: []].append(row.input.serialNumber) }
            }
            let added = try await Directory.addMemberships(ctl, memberships)
            try Directory.reportUpsert(
                ctl,
                noun: "devices",
                path: self.file,
                total: total,
                memberships: added.changed,
                errors: errors + added.errors
            )
        }
    }
}

struct DevicesAdd: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Create or update one device.",
        discussion: "Example: vppctl devices add C02XK1ABJG5J --owner alice --model iPad13,1"
    )

    @Argument(help: ArgumentHelp("The device's serial number.", valueName: "serial")) var serial: String
    @Option(name: .customLong("owner"), help: "The owner's external id (user-affiliated devices).") var owner: String?
    @Option(help: "How it was enrolled (R18; default: user-affiliated with an owner, automated without).")
    var enrollment: Choice<VppV1.EnrollmentKind>?
    @Flag(help: "The built-in Books app was removed (R22).") var noBooksApp = false
    @Option(help: "Device name.") var name: String?
    @Option(help: "Model identifier.") var model: String?
    @Option(help: "OS version.") var osVersion: String?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let device = VppV1.DeviceInput(
                serialNumber: self.serial,
                ownerExternalId: self.owner ?? "",
                enrollment: self.enrollment?.value ?? (self.owner == nil ? .automated : .userAffiliated),
                booksAppPresent: !self.noBooksApp,
                name: self.name ?? "",
                model: self.model ?? "",
                osVersion: self.osVersion ?? ""
            )
            let answer = try await ctl.call(
                VppV1.DirectoryService.UpsertDevices.self,
                VppV1.UpsertDevicesRequest(devices: [device])
            )
            let errors = answer.errors.map { "\($0.key): \($0.message)" }
            try Directory.reportUpsert(
                ctl,
                noun: "devices",
                path: "device \(self.serial)",
                total: answer,
                memberships: 0,
                errors: errors
            )
        }
    }
}

struct DevicesList: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List devices, optionally matching a query, in a group, or of an owner.",
        discussion: "Example: vppctl devices list --owner alice"
    )

    @Option(help: "A substring of the serial number or name.") var query: String?
    @Option(help: "Only members of this group (id or external id).") var group: String?
    @Option(help: "Only this user's devices (external id).") var owner: String?
    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            var request = VppV1.ListDevicesRequest(
                page: self.page.request,
                query: self.query ?? "",
                ownerExternalId: self.owner ?? ""
            )
            if let group = self.group { request.groupId = try await Directory.group(ctl, group).id }
            let answer = try await ctl.call(VppV1.DirectoryService.ListDevices.self, request, notFound: Look.users)
            ctl.printer.list(
                answer,
                items: "devices",
                columns: DevicesCommand.columns,
                empty: "No devices. Import some: vppctl devices import FILE.csv"
            )
        }
    }
}

struct DevicesShow: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one device, by serial number or id.",
        discussion: "Example: vppctl devices show C02XK1ABJG5J"
    )

    @Argument(help: ArgumentHelp("The serial number or id.", valueName: "device")) var device: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            ctl.printer.record(
                try await Directory.get(ctl, VppV1.DirectoryService.GetDevice.self, self.device, notFound: Look.devices)
            )
        }
    }
}

struct DevicesDelete: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete devices by serial number.",
        discussion: "Example: vppctl devices delete C02XK1ABJG5J"
    )

    @Argument(help: ArgumentHelp("Serial numbers.", valueName: "serial")) var keys: [String] = []
    @Option(help: "A CSV or JSON file with a serial_number column.", completion: .file(extensions: ["csv", "json"]))
    var file: String?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        let keys = try Directory.keys(self.keys, file: self.file)
        try await Ctl.run(self.connection, self.output) { ctl in
            try await DeleteEntries.run(
                ctl,
                keys: keys,
                noun: "devices",
                method: VppV1.DirectoryService.DeleteDevices.self
            )
        }
    }
}
