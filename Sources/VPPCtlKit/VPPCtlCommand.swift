public import ArgumentParser
import Foundation
import VPPClient
import VPPProto
import VPPWire

/// `vppctl`: the command-line client of the VPP License Server, for tenant admins and platform operators (C9).
public struct VPPCtlCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vppctl",
        abstract: "Manage VPP tokens, apps and books, the directory and assignments on a VPP License Server.",
        discussion: """
            Tenant admins use a tenant key: tokens, sync, apps, books, users, devices, groups, assignments, \
            licenses, status, audit. Platform operators use an operator key: tenants, keys, migrations, audit \
            operator.

            Connection: --server host:port and --api-key-file PATH, else the environment (VPP_SERVER, VPP_API_KEY \
            or VPP_API_KEY_FILE, VPP_TIMEOUT), else the config file ($XDG_CONFIG_HOME/vppctl/config or \
            ~/.config/vppctl/config; lines like `server = host:port`, `api_key_file = PATH`). `vppctl config` shows \
            what is in force and where each setting came from.

            Output: aligned tables for people; --json prints one JSON document with the proto's field names. \
            Colour only on a terminal and without NO_COLOR.

            \(CtlExitCode.helpTable)

            Shell completion: vppctl --generate-completion-script bash|zsh|fish.

            Example:
              export VPP_API_KEY_FILE=.vpp-local/demo-tenant.key
              vppctl tokens list
            """,
        subcommands: [
            WhoAmICommand.self, PingCommand.self, ConfigCommand.self,
            TokensCommand.self, JobsCommand.self, AppsCommand.self, BooksCommand.self,
            UsersCommand.self, DevicesCommand.self, GroupsCommand.self,
            AssignmentsCommand.self, LicensesCommand.self, StatusCommand.self, AuditCommand.self,
            TenantsCommand.self, KeysCommand.self, MigrationsCommand.self,
        ]
    )

    public init() {}

    /// Parses the command line, runs the command, and exits with the status class of what went wrong
    /// (`CtlExitCode`). (As vpp-load: one async entry point of our own, because argument-parser's existential
    /// `run()` may dispatch to the synchronous requirement.)
    public static func runMain(_ arguments: [String]? = nil) async {
        do {
            var command = try Self.parseAsRoot(arguments)
            if let subcommand = command as? any CtlSubcommand {
                try await subcommand.execute()
            } else {
                try command.run()
            }
        } catch let error as CtlError {
            Self.report(error)
            Foundation.exit(error.exitCode.rawValue)
        } catch let error as RPCError {
            let mapped = CtlError.from(error, context: ErrorContext())
            Self.report(mapped)
            Foundation.exit(mapped.exitCode.rawValue)
        } catch {
            if Self.exitCode(for: error) == .validationFailure {
                // argument-parser says 64 (EX_USAGE); vppctl's table says 2 for every usage error.
                Terminal.writeError(Self.fullMessage(for: error) + "\n")
                Foundation.exit(CtlExitCode.usage.rawValue)
            }
            Self.exit(withError: error)
        }
    }

    static func report(_ error: CtlError) {
        let colour = Terminal.colourAllowed(
            isTerminal: Terminal.isTerminal(2),
            environment: ProcessInfo.processInfo.environment
        )
        let prefix = colour ? Terminal.red("vppctl:") : "vppctl:"
        Terminal.writeError("\(prefix) \(error.description)\n")
    }
}

/// A vppctl command: parsed by argument-parser, run by `VPPCtlCommand.runMain`.
protocol CtlSubcommand: ParsableCommand {
    func execute() async throws
}

/// What a command needs to talk to the server and print: the settings in force, a client made from them, the
/// printer, and the advice for statuses.
struct Ctl {
    let connection: ResolvedConnection
    let printer: Printer
    let client: VPPClient

    init(_ connection: ConnectionOptions, _ output: OutputOptions) throws {
        self.connection = try connection.resolve(environment: ProcessInfo.processInfo.environment)
        self.printer = Printer.standard(output)
        self.client = VPPClient(self.connection.clientConfiguration())
    }

    func context(notFound: String?, hints: [RpcV1.StatusCode: String] = [:]) -> ErrorContext {
        ErrorContext(
            notFoundHint: notFound,
            keySource: self.connection.sources["api_key"],
            server: self.connection.serverDescription,
            hints: hints
        )
    }

    /// Calls a unary method; a failure becomes a `CtlError` with advice (`notFound` says where to look).
    func call<Method: ProtoMethod>(
        _ method: Method.Type,
        _ request: Method.Request,
        notFound: String? = nil,
        hints: [RpcV1.StatusCode: String] = [:]
    ) async throws -> Method.Response {
        do {
            return try await self.client.call(method, request)
        } catch {
            throw CtlError.from(error, context: self.context(notFound: notFound, hints: hints))
        }
    }

    /// Calls a unary method on a connection of its own and prints the answer as one record: what every `show`
    /// command does.
    static func show<Method: ProtoMethod>(
        _ connection: ConnectionOptions,
        _ output: OutputOptions,
        _ method: Method.Type,
        _ request: Method.Request,
        notFound: String
    ) async throws {
        try await Self.run(connection, output) { ctl in
            ctl.printer.record(try await ctl.call(method, request, notFound: notFound))
        }
    }

    /// Runs `body` and closes the connection afterwards, also when it throws.
    static func run(
        _ connection: ConnectionOptions,
        _ output: OutputOptions,
        _ body: (Ctl) async throws -> Void
    ) async throws {
        let ctl = try Ctl(connection, output)
        do {
            try await body(ctl)
        } catch {
            await ctl.client.close()
            throw CtlError.from(error, context: ctl.context(notFound: nil))
        }
        await ctl.client.close()
    }
}

/// Hints for NOT_FOUND, one per kind of thing.
enum Look {
    static let tokens = "Run \"vppctl tokens list\" to see the tokens."
    static let jobs = "Run \"vppctl jobs list\" to see the sync jobs."
    static let assets = "Run \"vppctl apps list\" or \"vppctl books list\" to see the apps and books and their ids."
    static let users = "Run \"vppctl users list\" to see the users."
    static let devices = "Run \"vppctl devices list\" to see the devices."
    static let groups = "Run \"vppctl groups list\" to see the groups."
    static let assignments = "Run \"vppctl assignments list\" to see the assignments."
    static let tenants = "Run \"vppctl tenants list\" to see the tenants."
    static let keys = "Run \"vppctl keys list\" to see the keys."
}
