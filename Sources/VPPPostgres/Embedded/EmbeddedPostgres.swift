public import Foundation

/// A local PostgreSQL cluster run from the server binaries, for the local run and the tests.
///
/// `initdb` runs once for an empty data directory (UTF-8, the superuser with a generated password and
/// scram-sha-256 for every connection, the password kept in `vpp-superuser.password`, mode 0600, inside the data
/// directory, which only the cluster's user (and root) can read); `start()` writes `vpp-embedded.conf` (port,
/// loopback only, the Unix socket inside the data directory, `max_connections`, optionally no fsync) and
/// `pg_hba.conf`, and runs `pg_ctl -w`. Another local account can reach the port but not the password (issue 16: the
/// cluster used to trust every local user, who could connect as the superuser and insert an operator key). A data
/// directory made by an older version (trust, no password file) gets a password at its next start.
/// PostgreSQL refuses to run as root, so as root every command runs as the `postgres` user via
/// `runuser` and the data directory is handed to that user (its parents must be traversable).
public final class EmbeddedPostgres: Sendable {
    public struct Options: Sendable {
        public var dataDirectory: String
        /// `nil`: a free port on 127.0.0.1, chosen once and kept across restarts.
        public var port: Int?
        public var superuser: String
        /// `nil`: `VPP_PG_BINDIR`, else the highest `/usr/lib/postgresql/*/bin`.
        public var binDirectory: String?
        /// `fsync=off`, `synchronous_commit=off`, `full_page_writes=off`: fast, and loses data
        /// on a crash of the machine. For tests only.
        public var unsafeFastWrites: Bool
        public var maxConnections: Int

        public init(
            dataDirectory: String,
            port: Int? = nil,
            superuser: String = "vpp",
            binDirectory: String? = nil,
            unsafeFastWrites: Bool = false,
            maxConnections: Int = 300
        ) {
            self.dataDirectory = dataDirectory
            self.port = port
            self.superuser = superuser
            self.binDirectory = binDirectory
            self.unsafeFastWrites = unsafeFastWrites
            self.maxConnections = maxConnections
        }
    }

    public let options: Options
    public let port: Int
    public let binDirectory: String
    /// The server's log (also quoted in errors).
    public var logFile: String { options.dataDirectory + "/server.log" }

    private let runsAsPostgresUser: Bool

    public init(options: Options) throws(EmbeddedPostgresError) {
        self.options = options
        if let binDirectory = options.binDirectory {
            self.binDirectory = binDirectory
        } else {
            self.binDirectory = try Self.findBinDirectory()
        }
        if let port = options.port {
            self.port = port
        } else {
            self.port = try Self.freeLoopbackPort()
        }
        self.runsAsPostgresUser = geteuid() == 0
        guard !options.superuser.isEmpty, options.superuser.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" })
        else { throw EmbeddedPostgresError("the superuser name must be letters, digits and underscores") }
    }

    /// The superuser's password, readable by the cluster's user and root only.
    public var passwordFile: String { options.dataDirectory + "/vpp-superuser.password" }

    /// A configuration for connecting as the superuser over TCP, with the password from `passwordFile`.
    public func configuration(database: String = "postgres") -> PostgresConfiguration {
        var configuration = PostgresConfiguration(
            host: "127.0.0.1",
            port: port,
            user: options.superuser,
            database: database
        )
        configuration.password = (try? String(contentsOfFile: self.passwordFile, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return configuration
    }

    /// Initializes the data directory if needed and starts the server; returns when it accepts
    /// connections.
    public func start() async throws {
        try await initializeIfNeeded()
        try writeSettings()
        let needsPassword = !FileManager.default.fileExists(atPath: self.passwordFile)
        // A data directory from before passwords: trusted once more, to give the superuser its password.
        try writeAccessRules(trust: needsPassword)
        try await run(
            "pg_ctl",
            ["start", "-w", "-t", "60", "-s", "-D", options.dataDirectory, "-l", logFile],
            what: "start PostgreSQL"
        )
        if needsPassword {
            let password = Self.makePassword()
            var admin = self.configuration()
            admin.password = nil
            admin.poolSize = 1
            let pool = PostgresPool(configuration: admin)
            do {
                // Hex only: safe to write as a literal (ALTER ROLE takes no parameters).
                try await pool.simpleQuery(
                    "ALTER ROLE \(try quoteIdentifier(options.superuser)) PASSWORD '\(password)'"
                )
                await pool.shutdown()
            } catch {
                await pool.shutdown()
                throw error
            }
            try self.writePrivateFile(self.passwordFile, password)
            try writeAccessRules(trust: false)
            try await run(
                "pg_ctl",
                ["reload", "-s", "-D", options.dataDirectory],
                what: "reload PostgreSQL's access rules"
            )
        }
    }

    static func makePassword() -> String {
        (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// Writes `text` to `path`, mode 0600, owned by the cluster's user.
    private func writePrivateFile(_ path: String, _ text: String) throws {
        let created = FileManager.default.createFile(
            atPath: path,
            contents: Data((text + "\n").utf8),
            attributes: [.posixPermissions: 0o600]
        )
        guard created else { throw EmbeddedPostgresError("could not write \(path)") }
        try handToPostgresUser(path)
    }

    /// pg_hba.conf: every connection authenticates with the superuser's password (scram-sha-256); `trust` only for the
    /// one start that gives an older data directory its password.
    private func writeAccessRules(trust: Bool) throws {
        let method = trust ? "trust" : "scram-sha-256"
        let rules = """
            # Written by EmbeddedPostgres at each start.
            local all all \(method)
            host all all 127.0.0.1/32 \(method)
            host all all ::1/128 \(method)

            """
        let path = options.dataDirectory + "/pg_hba.conf"
        try rules.write(toFile: path, atomically: false, encoding: .utf8)
        try handToPostgresUser(path)
    }

    /// Stops the server (`pg_ctl stop -m fast`): running sessions are disconnected.
    public func stop() async throws {
        try await run(
            "pg_ctl",
            ["stop", "-w", "-t", "60", "-s", "-m", "fast", "-D", options.dataDirectory],
            what: "stop PostgreSQL"
        )
    }

    public func restart() async throws {
        try await stop()
        try await start()
    }

    public func isRunning() async -> Bool {
        (try? await run("pg_ctl", ["status", "-D", options.dataDirectory], what: "check PostgreSQL")) != nil
    }

    /// Stops the server without async machinery and without starting a process, for `atexit` handlers: sends the
    /// postmaster SIGQUIT (immediate shutdown: the data is thrown away afterwards anyway) and waits up to 5 seconds
    /// for it to exit. Foundation's `Process` is not used here: at exit its child monitoring may no longer run, and
    /// `waitUntilExit` was seen to hang the test process forever.
    public func stopImmediatelyBlocking() {
        guard let pidFile = try? String(contentsOfFile: options.dataDirectory + "/postmaster.pid", encoding: .utf8),
            let firstLine = pidFile.split(separator: "\n").first,
            let pid = pid_t(firstLine.trimmingCharacters(in: .whitespaces)), pid > 0
        else { return }
        guard kill(pid, SIGQUIT) == 0 else { return }
        for _ in 0..<100 {
            if kill(pid, 0) != 0 { return }
            usleep(50_000)
        }
    }

    // MARK: Setup

    private func initializeIfNeeded() async throws {
        let fileManager = FileManager.default
        let directory = options.dataDirectory
        if fileManager.fileExists(atPath: directory + "/PG_VERSION") { return }
        try fileManager.createDirectory(
            atPath: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        guard (try fileManager.contentsOfDirectory(atPath: directory)).isEmpty else {
            throw EmbeddedPostgresError("\(directory) is neither empty nor a PostgreSQL data directory")
        }
        try handToPostgresUser(directory)
        // initdb reads the password from a file beside the data directory (it must be empty), then it moves inside.
        let password = Self.makePassword()
        let passwordDraft =
            URL(fileURLWithPath: directory).deletingLastPathComponent().path + "/.vpp-pw-\(UUID().uuidString)"
        try self.writePrivateFile(passwordDraft, password)
        defer { try? fileManager.removeItem(atPath: passwordDraft) }
        try await run(
            "initdb",
            [
                "-D", directory, "-U", options.superuser, "-E", "UTF8", "--no-locale",
                "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--pwfile=\(passwordDraft)",
                "--no-instructions",
            ],
            what: "initialize a PostgreSQL data directory",
            includeLog: false
        )
        try self.writePrivateFile(self.passwordFile, password)
        let include =
            "\n# Written by EmbeddedPostgres; the settings are rewritten at each start.\n"
            + "include_if_exists = 'vpp-embedded.conf'\n"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/postgresql.conf"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(include.utf8))
        try handle.close()
    }

    private func writeSettings() throws {
        func quoted(_ value: String) -> String { "'" + value.replacingOccurrences(of: "'", with: "''") + "'" }
        var settings = [
            "listen_addresses = '127.0.0.1'",
            "port = \(port)",
            "unix_socket_directories = \(quoted(options.dataDirectory))",
            "max_connections = \(options.maxConnections)",
            "logging_collector = off",
        ]
        if options.unsafeFastWrites {
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        }
        let path = options.dataDirectory + "/vpp-embedded.conf"
        try (settings.joined(separator: "\n") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        try handToPostgresUser(path)
    }

    private func handToPostgresUser(_ path: String) throws {
        guard runsAsPostgresUser else { return }
        guard let user = getpwnam("postgres") else {
            throw EmbeddedPostgresError("running as root needs a 'postgres' user to run the server as")
        }
        guard chown(path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
            throw EmbeddedPostgresError("could not hand \(path) to the postgres user (errno \(errno))")
        }
    }

    // MARK: Processes

    private func makeProcess(_ tool: String, _ arguments: [String]) -> Process {
        let process = Process()
        let binary = binDirectory + "/" + tool
        if runsAsPostgresUser {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            process.arguments = ["-u", "postgres", "--", binary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
        }
        // The postgres user may not be allowed into the caller's working directory.
        process.currentDirectoryURL = URL(fileURLWithPath: options.dataDirectory).deletingLastPathComponent()
        var environment = ProcessInfo.processInfo.environment
        environment["LC_ALL"] = "C"
        environment["PGTZ"] = nil
        process.environment = environment
        return process
    }

    /// Runs a server tool and waits for it without blocking a thread; its output goes to a
    /// temporary file (a pipe could be inherited by the server and never reach end-of-file).
    @discardableResult
    private func run(
        _ tool: String,
        _ arguments: [String],
        what: String,
        includeLog: Bool = true
    ) async throws -> String {
        let outputPath = NSTemporaryDirectory() + "vpp-pg-\(UUID().uuidString).out"
        FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        let process = makeProcess(tool, arguments)
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let status = await Self.waitForExit(of: process)
        try? output.close()
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw EmbeddedPostgresError(
                "could not \(what): \(tool) exited with status \(status)",
                output: text,
                logTail: includeLog ? logTail() : ""
            )
        }
        return text
    }

    /// Waits for a child to exit on a thread of its own. `waitpid` is called directly: inside a
    /// test runner, `Process.terminationHandler` was seen never to fire (the child stayed a
    /// zombie), so Foundation's own child monitoring is not relied on.
    private static func waitForExit(of process: Process) async -> Int32 {
        let pid = process.processIdentifier
        return await withCheckedContinuation { continuation in
            let thread = Thread {
                var status: Int32 = 0
                var result: pid_t
                repeat { result = waitpid(pid, &status, 0) } while result < 0 && errno == EINTR
                if result == pid {
                    // WIFEXITED / WEXITSTATUS, spelled out (the C macros are not imported).
                    let exited = status & 0x7f == 0
                    continuation.resume(returning: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f))
                } else {
                    // Foundation reaped it first.
                    process.waitUntilExit()
                    continuation.resume(returning: process.terminationStatus)
                }
            }
            thread.name = "vpp.postgres.embedded.wait"
            thread.start()
        }
    }

    /// The last lines of the server log.
    public func logTail(lines: Int = 30) -> String {
        guard let log = try? String(contentsOfFile: logFile, encoding: .utf8) else { return "" }
        return log.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    // MARK: Discovery

    static func findBinDirectory() throws(EmbeddedPostgresError) -> String {
        if let configured = ProcessInfo.processInfo.environment["VPP_PG_BINDIR"], !configured.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: configured + "/pg_ctl") else {
                throw EmbeddedPostgresError("VPP_PG_BINDIR=\(configured) has no pg_ctl")
            }
            return configured
        }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap { name in Double(name).map { (version: $0, name: name) } }
            .sorted { $0.version > $1.version }
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(version.name)/bin/pg_ctl")
        {
            return "\(root)/\(version.name)/bin"
        }
        throw EmbeddedPostgresError(
            "no PostgreSQL server binaries: install postgresql (Debian) or set VPP_PG_BINDIR"
        )
    }

    /// A port that was free a moment ago: bind 127.0.0.1:0 and ask which port the kernel chose.
    public static func freeLoopbackPort() throws(EmbeddedPostgresError) -> Int {
        #if canImport(Glibc)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw EmbeddedPostgresError("socket() failed (errno \(errno))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else { throw EmbeddedPostgresError("could not find a free port (errno \(errno))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A failure to set up, start or stop an `EmbeddedPostgres`, with what the tool printed and the
/// end of the server log.
public struct EmbeddedPostgresError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var output: String
    public var logTail: String

    init(_ message: String, output: String = "", logTail: String = "") {
        self.message = message
        self.output = output
        self.logTail = logTail
    }

    public var description: String {
        var text = message
        if !output.isEmpty { text += "\n--- output ---\n" + output }
        if !logTail.isEmpty { text += "\n--- server log (tail) ---\n" + logTail }
        return text
    }
}
