public import ArgumentParser
import Foundation
public import VPPClient
import VPPWire

/// Every connection setting of vppctl, in one place: the flags here, the environment and the config file are read
/// by `resolve(environment:)` alone, and `ResolvedConnection.clientConfiguration()` alone builds the client's
/// configuration. A new setting (TLS's `--ca-file`, `--plaintext`, ...) is one `@Option`, one `pick` line in
/// `resolve`, one field in `ResolvedConnection` and one line in `clientConfiguration()`.
///
/// Precedence, per setting: flag, then environment variable, then config file, then the default.
public struct ConnectionOptions: ParsableArguments, Sendable {
    @Option(
        name: .customLong("server"),
        help: ArgumentHelp(
            "The server's RPC address, host:port (env VPP_SERVER; default 127.0.0.1:7443).",
            valueName: "host:port"
        )
    )
    public var server: String?

    @Option(
        name: .customLong("api-key-file"),
        help: ArgumentHelp(
            "A file holding the API key alone (env VPP_API_KEY_FILE, or the key itself in VPP_API_KEY). Keeps the key "
                + "out of process listings.",
            valueName: "path"
        )
    )
    public var apiKeyFile: String?

    @Option(
        name: .customLong("api-key"),
        help: ArgumentHelp(
            "The API key itself. Visible to anyone who can list processes: prefer --api-key-file or VPP_API_KEY.",
            valueName: "key"
        )
    )
    public var apiKey: String?

    @Option(
        name: .customLong("config"),
        help: ArgumentHelp("The config file (env VPPCTL_CONFIG; default ~/.config/vppctl/config).", valueName: "path")
    )
    public var configPath: String?

    @Option(
        help: ArgumentHelp("Each call's deadline, e.g. 30s, 2m (env VPP_TIMEOUT; default 60s).", valueName: "duration")
    )
    public var timeout: String?

    @Option(
        name: .customLong("ca-file"),
        help: ArgumentHelp(
            "A PEM file of the CA that signed the server's certificate, trusted instead of the system's CAs (a "
                + "private CA; env VPP_CA_FILE).",
            valueName: "path"
        )
    )
    public var caFile: String?

    @Option(
        name: .customLong("tls-server-name"),
        help: ArgumentHelp(
            "The name the server's certificate must carry, when it is not the address connected to (env "
                + "VPP_TLS_SERVER_NAME).",
            valueName: "name"
        )
    )
    public var tlsServerName: String?

    @Flag(
        name: .customLong("plaintext"),
        help: ArgumentHelp(
            "Plain TCP even to a server that is not on this machine: the API key crosses the network in clear text "
                + "(env VPP_PLAINTEXT=true). Without it, vppctl uses TLS for every server but loopback."
        )
    )
    public var plaintext: Bool = false

    public init() {}

    /// Reads flags, environment and config file into the settings in force, each with where it came from.
    public func resolve(environment: [String: String]) throws(CtlError) -> ResolvedConnection {
        let configPath = self.configPath ?? ConfigFile.defaultPath(environment: environment)
        let required = self.configPath != nil || !(environment["VPPCTL_CONFIG"] ?? "").isEmpty
        let file = try ConfigFile.load(path: configPath, required: required)

        func pick(flag: String?, flagName: String, env: String, fileKey: String) -> Setting? {
            if let flag, !flag.isEmpty { return Setting(value: flag, source: flagName) }
            if let value = environment[env], !value.isEmpty { return Setting(value: value, source: env) }
            if let value = file?.values[fileKey], !value.isEmpty {
                return Setting(value: value, source: "\(fileKey) in \(configPath)")
            }
            return nil
        }

        let serverSetting =
            pick(flag: self.server, flagName: "--server", env: "VPP_SERVER", fileKey: "server")
            ?? Setting(value: "127.0.0.1:7443", source: "default")
        let (host, port) = try Self.parseServer(serverSetting.value, source: serverSetting.source)

        let timeoutSetting =
            pick(flag: self.timeout, flagName: "--timeout", env: "VPP_TIMEOUT", fileKey: "timeout")
            ?? Setting(value: "60s", source: "default")
        guard let timeout = parseDuration(timeoutSetting.value), timeout > .zero else {
            throw CtlError.badInput(
                "the timeout \"\(timeoutSetting.value)\" (from \(timeoutSetting.source)) is not a duration",
                hint: "Give one like 30s, 500ms or 2m."
            )
        }

        // Transport: TLS for every server but loopback, unless plain TCP is asked for (flag, environment, file).
        let plaintextSetting =
            (self.plaintext ? Setting(value: "true", source: "--plaintext") : nil)
            ?? pick(flag: nil, flagName: "--plaintext", env: "VPP_PLAINTEXT", fileKey: "plaintext")
            ?? Setting(value: "false", source: "default")
        let plaintext: Bool
        switch plaintextSetting.value.lowercased() {
        case "true", "yes", "1", "on": plaintext = true
        case "false", "no", "0", "off": plaintext = false
        default:
            throw CtlError.badInput(
                "plaintext \"\(plaintextSetting.value)\" (from \(plaintextSetting.source)) is not true or false",
                hint: "Give true or false."
            )
        }
        let caSetting = pick(flag: self.caFile, flagName: "--ca-file", env: "VPP_CA_FILE", fileKey: "ca_file")
        let serverNameSetting = pick(
            flag: self.tlsServerName,
            flagName: "--tls-server-name",
            env: "VPP_TLS_SERVER_NAME",
            fileKey: "tls_server_name"
        )
        if plaintext, let given = caSetting ?? serverNameSetting {
            throw CtlError.badInput(
                "plain TCP was asked for (\(plaintextSetting.source)), and a TLS setting too (\(given.source))",
                hint: "Drop --plaintext to use TLS, or drop the TLS setting."
            )
        }
        let security: TransportSecurity
        if plaintext {
            security = .plaintext
        } else if caSetting != nil || serverNameSetting != nil {
            security = .tls(
                ClientTLS(
                    trustRootsFile: caSetting.map { expandTilde($0.value, environment: environment) },
                    serverName: serverNameSetting?.value
                )
            )
        } else {
            security = .automatic
        }
        var transportSource = plaintextSetting.source
        if let caSetting { transportSource = caSetting.source }

        // The key: levels in order (flags, environment, config file); within a level an inline key beats a key file.
        func nonEmpty(_ value: String?, _ source: String) -> Setting? {
            guard let value, !value.isEmpty else { return nil }
            return Setting(value: value, source: source)
        }
        let keyLevels: [(inline: Setting?, file: Setting?)] = [
            (nonEmpty(self.apiKey, "--api-key"), nonEmpty(self.apiKeyFile, "--api-key-file")),
            (
                nonEmpty(environment["VPP_API_KEY"], "VPP_API_KEY"),
                nonEmpty(environment["VPP_API_KEY_FILE"], "VPP_API_KEY_FILE")
            ),
            (
                nonEmpty(file?.values["api_key"], "api_key in \(configPath)"),
                nonEmpty(file?.values["api_key_file"], "api_key_file in \(configPath)")
            ),
        ]
        let apiKey: Setting
        if let level = keyLevels.first(where: { $0.inline != nil || $0.file != nil }) {
            if let inline = level.inline {
                apiKey = inline
            } else {
                let fileSetting = level.file!
                let path = expandTilde(fileSetting.value, environment: environment)
                apiKey = Setting(
                    value: try Self.readKeyFile(path, source: fileSetting.source),
                    source: "\(fileSetting.source) (\(path))"
                )
            }
        } else {
            throw CtlError(
                .unauthenticated,
                "no API key given",
                hint: "Give one with --api-key-file PATH, the environment variable VPP_API_KEY (or VPP_API_KEY_FILE), "
                    + "or api_key_file in \(configPath). The local run writes the demo tenant's key to "
                    + ".vpp-local/demo-tenant.key."
            )
        }
        return ResolvedConnection(
            host: host,
            port: port,
            apiKey: apiKey.value,
            timeout: timeout,
            security: security,
            sources: [
                "server": serverSetting.source, "api_key": apiKey.source, "timeout": timeoutSetting.source,
                "transport": transportSource,
            ],
            configFile: file?.path
        )
    }

    /// `host:port`, `[v6]:port`, or a bare host (port 7443).
    static func parseServer(_ text: String, source: String) throws(CtlError) -> (host: String, port: Int) {
        func bad() -> CtlError {
            CtlError.badInput(
                "the server address \"\(text)\" (from \(source)) is not host:port",
                hint: "Give it like 127.0.0.1:7443 or vpp.example.net:7443."
            )
        }
        var host = text
        var portText: Substring = "7443"
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw bad() }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw bad() }
                portText = rest.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            guard text.firstIndex(of: ":") == colon else { throw bad() }  // a bare IPv6 address needs brackets
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (1...65535).contains(port) else { throw bad() }
        return (host, port)
    }

    static func readKeyFile(_ path: String, source: String) throws(CtlError) -> String {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CtlError.badInput(
                "cannot read the API key file \(path) (from \(source))",
                hint: "Check the path and its permissions; the file holds the key alone on one line."
            )
        }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard lines.count == 1, let key = lines.first else {
            throw CtlError.badInput(
                "the API key file \(path) holds \(lines.count) lines",
                hint: "It must hold the key alone on one line."
            )
        }
        return key
    }

    struct Setting {
        var value: String
        var source: String
    }
}

/// The connection settings in force, with where each came from (shown by `vppctl config`; never the key).
public struct ResolvedConnection: Sendable {
    public var host: String
    public var port: Int
    public var apiKey: String
    public var timeout: Duration
    /// TLS or plain TCP: TLS with the system's CAs for every server but loopback, unless told otherwise.
    public var security: TransportSecurity
    /// Setting name to where it came from: "--server", "VPP_SERVER", "server in /path", "default".
    public var sources: [String: String]
    public var configFile: String?

    public var serverDescription: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    /// The one place a `ClientConfiguration` is made from vppctl's settings.
    public func clientConfiguration() -> ClientConfiguration {
        ClientConfiguration(
            host: self.host,
            port: self.port,
            apiKey: self.apiKey,
            clientName: "vppctl/1",
            connectTimeout: .seconds(10),
            defaultTimeout: self.timeout,
            security: self.security
        )
    }

    /// How the connection is protected, in words (`vppctl config`).
    public var transportDescription: String {
        switch self.security.resolved(host: self.host) {
        case nil:
            HostAddress.isLoopback(self.host) && self.security == .automatic
                ? "plain TCP (loopback)" : "plain TCP (the API key travels in clear text)"
        case let tls?:
            "TLS, trusting " + (tls.trustRootsFile.map { "the CA in \($0)" } ?? "the system's CAs")
                + (tls.serverName.map { ", certificate for \($0)" } ?? "")
        }
    }
}

/// `500ms`, `30s`, `2m`, `1h`, or a bare number of seconds.
func parseDuration(_ text: String) -> Duration? {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        guard let number = Double(text.dropLast(suffix.count)), number >= 0 else { return nil }
        return .milliseconds(Int64(number * scale * 1000))
    }
    return Double(text).map { .milliseconds(Int64($0 * 1000)) }
}
