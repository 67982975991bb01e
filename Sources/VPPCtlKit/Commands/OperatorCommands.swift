import ArgumentParser
import Foundation
import VPPProto

/// `vppctl tenants …`, `vppctl keys …`, `vppctl migrations`: OperatorService (C9: platform operators). Operator key.
struct TenantsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenants",
        abstract: "Operators: create, list, show, update, suspend, resume and delete tenants (C3, C5, R14).",
        discussion: "Example: vppctl tenants create \"Springfield Schools\" --key-name \"admin tool\"",
        subcommands: [
            TenantsCreate.self, TenantsList.self, TenantsShow.self, TenantsUpdate.self, TenantsSuspend.self,
            TenantsResume.self, TenantsDelete.self,
        ]
    )

    static let columns = [
        Column("ID", "id"), Column("NAME", "display_name"), Column("STATE", "state"), Column("TOKENS", "token_count"),
        Column("LIMIT", "token_limit"), Column("DEVICE GROUPS", "device_group_assignment_allowed"),
        Column("CREATED", "created_at"),
    ]
}

struct TenantsCreate: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a tenant, optionally with its first API key (printed once).",
        discussion: """
            --created-at sets the organisation's creation date, which decides R14 (device groups only for tenants \
            created after January 2017, i.e. on or after 2017-02-01 UTC).
            Example: vppctl tenants create "Springfield Schools" --key-name "admin tool"
            """
    )

    @Argument(help: ArgumentHelp("The tenant's display name.", valueName: "name")) var name: String
    @Option(help: "Create a tenant key with this name; its secret is printed once.") var keyName: String?
    @Option(help: "How many VPP tokens it may hold (C5, R2; default 256).") var tokenLimit: UInt32?
    @Option(help: "The organisation's creation date, e.g. 2015-09-01T00:00:00Z (R14).") var createdAt: String?
    @Flag(help: "Allow device-group assignment whatever the creation date (R14).") var deviceGroups = false
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            var request = VppV1.CreateTenantRequest(
                displayName: self.name,
                tokenLimit: self.tokenLimit ?? 0,
                initialKeyName: self.keyName ?? ""
            )
            if let createdAt = self.createdAt {
                request.createdAt = try Time.parse(createdAt, option: "--created-at")
            }
            if self.deviceGroups {
                request.features = VppV1.TenantFeatures(deviceGroupAssignment: true)
            }
            let answer = try await ctl.call(VppV1.OperatorService.CreateTenant.self, request)
            ctl.printer.record(
                answer,
                headline: answer.initialKey == nil
                    ? "Created." : "Created. The key's secret is shown once: store it now."
            )
        }
    }
}

enum Time {
    static func parse(_ text: String, option: String) throws -> VppV1.Timestamp {
        guard let date = ISO8601DateFormatter().date(from: text) else {
            throw CtlError(
                .invalidArgument,
                "\(option) \"\(text)\" is not a time",
                hint: "Write it like 2015-09-01T00:00:00Z.",
                exitCode: .usage
            )
        }
        return VppV1.Timestamp(seconds: Int64(date.timeIntervalSince1970))
    }
}

struct TenantsList: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List tenants with their state and token counts.",
        discussion: "Example: vppctl tenants list --name school --state suspended"
    )

    @Option(help: "A substring of the name.") var name: String?
    @Option(help: "Only tenants in this state.") var state: Choice<VppV1.TenantState>?
    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let request = VppV1.ListTenantsRequest(
                page: self.page.request,
                nameContains: self.name ?? "",
                state: self.state?.value ?? .unspecified
            )
            let answer = try await ctl.call(VppV1.OperatorService.ListTenants.self, request)
            ctl.printer.list(
                answer,
                items: "tenants",
                columns: TenantsCommand.columns,
                empty: "No tenants. Create one: vppctl tenants create NAME"
            )
        }
    }
}

struct TenantsShow: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one tenant.",
        discussion: "Example: vppctl tenants show 3a8c…"
    )

    @Argument(help: ArgumentHelp("The tenant's id.", valueName: "tenant-id")) var tenantID: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.show(
            self.connection,
            self.output,
            VppV1.OperatorService.GetTenant.self,
            VppV1.GetTenantRequest(tenantId: self.tenantID),
            notFound: Look.tenants
        )
    }
}

struct TenantsUpdate: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Rename a tenant, change its token limit (C5) or its device-group feature (R14).",
        discussion: "Example: vppctl tenants update 3a8c… --token-limit 500 --device-groups true"
    )

    @Argument(help: ArgumentHelp("The tenant's id.", valueName: "tenant-id")) var tenantID: String
    @Option(help: "A new display name.") var name: String?
    @Option(help: "A new token limit.") var tokenLimit: UInt32?
    @Option(help: "Allow (true) or stop allowing (false) device-group assignment for an older tenant (R14).")
    var deviceGroups: Bool?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    mutating func validate() throws {
        guard self.name != nil || self.tokenLimit != nil || self.deviceGroups != nil else {
            throw ValidationError("Give something to change: --name, --token-limit or --device-groups.")
        }
    }

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            var request = VppV1.UpdateTenantRequest(tenantId: self.tenantID)
            if let name = self.name {
                request.displayName = VppV1.StringValue(value: name)
            }
            if let limit = self.tokenLimit {
                request.tokenLimit = VppV1.UInt32Value(value: limit)
            }
            if let deviceGroups = self.deviceGroups {
                request.features = VppV1.TenantFeatures(deviceGroupAssignment: deviceGroups)
            }
            ctl.printer.record(
                try await ctl.call(VppV1.OperatorService.UpdateTenant.self, request, notFound: Look.tenants)
            )
        }
    }
}

struct TenantsSuspend: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "suspend",
        abstract: "Suspend a tenant: its calls answer FAILED_PRECONDITION and its syncs stop.",
        discussion: "Example: vppctl tenants suspend 3a8c… --reason \"unpaid invoice\""
    )

    @Argument(help: ArgumentHelp("The tenant's id.", valueName: "tenant-id")) var tenantID: String
    @Option(help: "Why, shown to the tenant.") var reason: String = ""
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.show(
            self.connection,
            self.output,
            VppV1.OperatorService.SuspendTenant.self,
            VppV1.SuspendTenantRequest(tenantId: self.tenantID, reason: self.reason),
            notFound: Look.tenants
        )
    }
}

struct TenantsResume: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Resume a suspended tenant.",
        discussion: "Example: vppctl tenants resume 3a8c…"
    )

    @Argument(help: ArgumentHelp("The tenant's id.", valueName: "tenant-id")) var tenantID: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.show(
            self.connection,
            self.output,
            VppV1.OperatorService.ResumeTenant.self,
            VppV1.ResumeTenantRequest(tenantId: self.tenantID),
            notFound: Look.tenants
        )
    }
}

struct TenantsDelete: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a tenant: its schema is dropped and its VPP tokens released. Cannot be undone.",
        discussion: "Example: vppctl tenants delete 3a8c… --confirm 3a8c…"
    )

    @Argument(help: ArgumentHelp("The tenant's id.", valueName: "tenant-id")) var tenantID: String
    @Option(help: "The tenant's id again, to confirm.") var confirm: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    mutating func validate() throws {
        guard self.confirm == self.tenantID else {
            throw ValidationError("--confirm must repeat the tenant's id: deleting a tenant cannot be undone.")
        }
    }

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let answer = try await ctl.call(
                VppV1.OperatorService.DeleteTenant.self,
                VppV1.DeleteTenantRequest(tenantId: self.tenantID, confirm: self.confirm),
                notFound: Look.tenants
            )
            ctl.printer.result(
                "Deleted tenant \(self.tenantID); \(answer.releasedTokens) tokens released.",
                json: ProtoJSON.encode(answer)
            )
        }
    }
}

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Operators: create, list and revoke API keys (operator keys and tenant keys).",
        discussion: "Example: vppctl keys create --tenant 3a8c… --name \"MDM integration\"",
        subcommands: [KeysCreate.self, KeysList.self, KeysRevoke.self]
    )
}

struct KeysCreate: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create an API key for a tenant (--tenant) or an operator key; the secret is printed once.",
        discussion: "Example: vppctl keys create --tenant 3a8c… --name \"MDM integration\" --json"
    )

    @Option(name: .customLong("tenant"), help: "The tenant's id; leave out for an operator key.") var tenantID: String?
    @Option(help: "A name to recognise the key by.") var name: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let answer = try await ctl.call(
                VppV1.OperatorService.CreateApiKey.self,
                VppV1.CreateApiKeyRequest(tenantId: self.tenantID ?? "", name: self.name),
                notFound: Look.tenants
            )
            ctl.printer.record(
                answer,
                headline: "Created. The secret is shown once: store it now (e.g. in a file for --api-key-file)."
            )
        }
    }
}

struct KeysList: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List operator keys, or a tenant's keys with --tenant.",
        discussion: "Example: vppctl keys list --tenant 3a8c… --include-revoked"
    )

    @Option(name: .customLong("tenant"), help: "The tenant's id; leave out for operator keys.") var tenantID: String?
    @Flag(help: "Also revoked keys.") var includeRevoked = false
    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let request = VppV1.ListApiKeysRequest(
                page: self.page.request,
                tenantId: self.tenantID ?? "",
                includeRevoked: self.includeRevoked
            )
            let answer = try await ctl.call(VppV1.OperatorService.ListApiKeys.self, request, notFound: Look.tenants)
            ctl.printer.list(
                answer,
                items: "keys",
                columns: [
                    Column("ID", "id"), Column("KIND", "kind"), Column("TENANT", "tenant_id"), Column("NAME", "name"),
                    Column("PREFIX", "prefix"), Column("CREATED", "created_at"), Column("LAST USED", "last_used_at"),
                    Column("REVOKED", "revoked_at"),
                ],
                empty: "No keys."
            )
        }
    }
}

struct KeysRevoke: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a key: it stops working on its next call, also on open connections.",
        discussion: "Example: vppctl keys revoke 91be…"
    )

    @Argument(help: ArgumentHelp("The key's id (vppctl keys list).", valueName: "key-id")) var keyID: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            ctl.printer.record(
                try await ctl.call(
                    VppV1.OperatorService.RevokeApiKey.self,
                    VppV1.RevokeApiKeyRequest(keyId: self.keyID),
                    notFound: Look.keys
                ),
                headline: "Revoked."
            )
        }
    }
}

struct MigrationsCommand: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "migrations",
        abstract: "Operators: schema versions of the control schema and every tenant schema.",
        discussion: "Example: vppctl migrations"
    )

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let answer = try await ctl.call(
                VppV1.OperatorService.GetMigrationStatus.self,
                VppV1.GetMigrationStatusRequest()
            )
            if ctl.printer.json {
                print(ProtoJSON.encode(answer).rendered())
                return
            }
            let all = ([answer.control].compactMap { $0 } + answer.tenants).map(ProtoJSON.encode)
            print(
                Table(
                    columns: [
                        Column("OWNER", "owner"), Column("SCHEMA", "schema_name"), Column("VERSION", "version"),
                        Column("LATEST", "latest_version"),
                    ],
                    items: all
                ).render(colour: ctl.printer.colour)
            )
            print("\(answer.tenantsBehind) tenant schemas behind.")
        }
    }
}
