import Foundation

/// Every setting of vppd: its flag, its environment variable, its default and what it does.
///
/// A setting's value comes from, in this order: the command-line flag, the environment variable, the config file
/// (`--config FILE` or `VPP_CONFIG`: lines of `VPP_NAME=value`, the same names as the environment, so one file
/// also serves systemd's EnvironmentFile=), then the default. `vppd config` prints what is in force.
public enum Setting: String, CaseIterable, Sendable {
    case host
    case port
    case metricsHost = "metrics-host"
    case metricsPort = "metrics-port"
    case databaseURL = "database-url"
    case dataDir = "data-dir"
    case databasePoolSize = "db-pool-size"
    case databaseStatementTimeout = "db-statement-timeout"
    case migrationConcurrency = "migration-concurrency"
    case maxFrameBytes = "max-frame-bytes"
    case frameBudgetBytes = "frame-budget-bytes"
    case maxCallsInFlight = "max-calls-in-flight"
    case maxConnections = "max-connections"
    case authTimeout = "auth-timeout"
    case idleTimeout = "idle-timeout"
    case maxCallDuration = "max-call-duration"
    case shutdownGrace = "shutdown-grace"
    case eventLoopThreads = "event-loop-threads"
    case logLevel = "log-level"
    case callLogLevel = "call-log-level"
    case bootstrapOperatorKey = "bootstrap-operator-key"
    case appleBaseURL = "apple-base-url"
    case tokenKey = "token-key"
    case tokenKeyFile = "token-key-file"
    case syncWorkers = "sync-workers"
    case syncInterval = "sync-interval"
    case reclaimPolicy = "reclaim-policy"
    case tlsCertFile = "tls-cert-file"
    case tlsKeyFile = "tls-key-file"
    case allowPlaintext = "allow-plaintext"
    case gaugeInterval = "gauge-interval"
    case notificationURL = "notification-url"
    case notificationHost = "notification-host"
    case notificationPort = "notification-port"
    case notificationTLSCertFile = "notification-tls-cert-file"
    case notificationTLSKeyFile = "notification-tls-key-file"
    case eventPollInterval = "event-poll-interval"
    case notifiedPollInterval = "notified-poll-interval"
    case changeRetention = "change-retention"
    case changeWatchBuffer = "change-watch-buffer"
    case changeMaxWatchers = "change-max-watchers"
    case changeMaintenanceInterval = "change-maintenance-interval"

    /// The environment variable (and config-file key).
    public var environmentName: String {
        "VPP_" + self.rawValue.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    public var defaultValue: String {
        switch self {
        case .host: "127.0.0.1"
        case .port: "7443"
        case .metricsHost: "127.0.0.1"
        case .metricsPort: "9464"
        case .databaseURL: ""
        case .dataDir: ".vpp-local"
        case .databasePoolSize: "16"
        case .databaseStatementTimeout: "30s"
        case .migrationConcurrency: "8"
        case .maxFrameBytes: "4194304"
        case .frameBudgetBytes: "134217728"
        case .maxCallsInFlight: "128"
        case .maxConnections: "10000"
        case .authTimeout: "10s"
        case .idleTimeout: "300s"
        case .maxCallDuration: "300s"
        case .shutdownGrace: "30s"
        case .eventLoopThreads: "0"
        case .logLevel: "info"
        case .callLogLevel: "info"
        case .bootstrapOperatorKey: ""
        case .appleBaseURL: "https://vpp.itunes.apple.com/mdm/v2"
        case .tokenKey: ""
        case .tokenKeyFile: ""
        case .syncWorkers: "4"
        case .syncInterval: "12h"
        case .reclaimPolicy: "immediate"
        case .tlsCertFile: ""
        case .tlsKeyFile: ""
        case .allowPlaintext: "false"
        case .gaugeInterval: "60s"
        case .notificationURL: ""
        case .notificationHost: "127.0.0.1"
        case .notificationPort: "8444"
        case .notificationTLSCertFile: ""
        case .notificationTLSKeyFile: ""
        case .eventPollInterval: "30s"
        case .notifiedPollInterval: "300s"
        case .changeRetention: "168h"
        case .changeWatchBuffer: "1000"
        case .changeMaxWatchers: "10000"
        case .changeMaintenanceInterval: "5m"
        }
    }

    /// Whether the value is a secret: never printed, never logged.
    public var isSecret: Bool {
        self == .bootstrapOperatorKey || self == .databaseURL || self == .tokenKey
    }

    public var summary: String {
        switch self {
        case .host: "Address the RPC port listens on. Use 0.0.0.0 to accept connections from other machines."
        case .port: "The RPC port (length-prefixed protobuf frames over TCP)."
        case .metricsHost: "Address of the HTTP endpoint for /metrics, /healthz and /readyz."
        case .metricsPort: "Port of the metrics and health endpoint; 0 turns it off."
        case .databaseURL:
            "PostgreSQL URL (postgres://user:password@host:port/database). Empty: vppd runs its own cluster in --data-dir."
        case .dataDir: "Directory for the embedded PostgreSQL cluster, used when no database URL is set."
        case .databasePoolSize: "Database connections in the pool; each has a thread of its own."
        case .databaseStatementTimeout: "Longest a database statement may run (e.g. 30s, 500ms)."
        case .migrationConcurrency: "Tenant schemas migrated in parallel at start-up."
        case .maxFrameBytes: "Largest RPC frame accepted or sent, in bytes; bigger frames close the connection."
        case .frameBudgetBytes:
            "Bytes that frames still arriving may announce across all connections; past it a new partial frame closes its connection (RESOURCE_EXHAUSTED)."
        case .maxCallsInFlight: "Calls one connection may have in flight; more answer RESOURCE_EXHAUSTED."
        case .maxConnections: "RPC connections open at once; more are refused."
        case .authTimeout: "Time a new connection has to authenticate."
        case .idleTimeout: "A connection with nothing in flight that sends nothing for this long is closed."
        case .maxCallDuration: "The longest deadline a call may have, and the deadline of calls that set none."
        case .shutdownGrace: "On SIGTERM, how long calls in flight may take to finish."
        case .eventLoopThreads: "Event loop threads for network I/O; 0 means one per core."
        case .logLevel: "trace, debug, info, notice, warning, error or critical."
        case .callLogLevel:
            "Level of the one log line every RPC call writes; a level below --log-level (e.g. debug) silences them under load."
        case .bootstrapOperatorKey:
            "An operator API key to create at start-up if no operator key exists yet (at least 32 characters). Prefer `vppd admin create-operator-key`."
        case .appleBaseURL:
            "Base URL of Apple's App and Book Management API; point it at vpp-apple-sim for tests and demos."
        case .tokenKey:
            "Key that encrypts VPP token files at rest (AES-256-GCM): 32 bytes as Base64 (head -c 32 /dev/urandom | base64). Prefer --token-key-file."
        case .tokenKeyFile:
            "File holding the token key as Base64. Without a key and with the embedded database, vppd creates <data-dir>/token.key."
        case .syncWorkers: "Sync jobs this server runs at once (0: this server runs no sync worker)."
        case .syncInterval: "How often every token syncs with Apple on schedule (R7: twice a day by default)."
        case .reclaimPolicy:
            "A license whose device or user no assignment reaches any more: immediate (taken back at once) or after-removal (held until the device reports the app removed)."
        case .tlsCertFile:
            "PEM certificate chain (leaf first) for TLS on the RPC port. With --tls-key-file, turns TLS on."
        case .tlsKeyFile: "PEM private key of --tls-cert-file."
        case .allowPlaintext:
            "true lets the RPC port serve plain TCP on an address other than loopback (API keys then cross the network in clear text). Without TLS, vppd otherwise listens on loopback only."
        case .gaugeInterval:
            "How often the fleet gauges (tokens by state, tokens expiring, targets waiting for licenses) are refreshed; 0 turns them off."
        case .notificationURL:
            "The public HTTPS URL Apple sends this server's notifications to (e.g. https://vpp.example.com/apple/notifications; each token gets <url>/<tenant>/<token>). Empty: notifications are off and events are polled."
        case .notificationHost: "Address the listener for Apple's notifications binds to (with --notification-url)."
        case .notificationPort: "Port of the listener for Apple's notifications (0: any free port)."
        case .notificationTLSCertFile:
            "PEM certificate chain for TLS on the notification listener; without it the listener serves plain HTTP, on loopback only (behind a proxy that terminates TLS, or the local run)."
        case .notificationTLSKeyFile: "PEM private key of --notification-tls-cert-file."
        case .eventPollInterval:
            "Time between polls of Apple's /status for an event no notification answered (Apple asks for at least 30s)."
        case .notifiedPollInterval:
            "While a token's notifications arrive, how long an event waits for its notification before it is polled (Apple: 5 minutes)."
        case .changeRetention:
            "How long the change feed keeps each change; a cursor older than that gets FAILED_PRECONDITION naming the oldest one held."
        case .changeWatchBuffer:
            "Changes buffered for one WatchChanges stream before a client that does not read is cut (RESOURCE_EXHAUSTED)."
        case .changeMaxWatchers: "WatchChanges streams this server serves at once."
        case .changeMaintenanceInterval:
            "How often the change feed is pruned and tokens expiring in 30, 14 or 7 days are announced in it."
        }
    }

    /// The help line of the setting's flag: what it does, its environment variable and its default.
    public var help: String {
        let shownDefault = self.defaultValue.isEmpty ? "none" : self.defaultValue
        return "\(self.summary) (env \(self.environmentName); default \(shownDefault))"
    }
}

/// The values in force: flags over environment over config file over defaults.
public struct ResolvedSettings: Sendable {
    public private(set) var values: [Setting: String] = [:]
    public private(set) var sources: [Setting: String] = [:]

    /// - Parameters:
    ///   - flags: the settings given on the command line.
    ///   - environment: the process environment.
    ///   - configFile: the path of a config file, if any (also taken from VPP_CONFIG).
    public init(flags: [Setting: String], environment: [String: String], configFile: String?) throws {
        var file: [String: String] = [:]
        if let path = configFile ?? environment["VPP_CONFIG"], !path.isEmpty {
            file = try Self.readConfigFile(path)
        }
        for setting in Setting.allCases {
            if let value = flags[setting] {
                (self.values[setting], self.sources[setting]) = (value, "flag")
            } else if let value = environment[setting.environmentName] {
                (self.values[setting], self.sources[setting]) = (value, "environment")
            } else if let value = file[setting.environmentName] {
                (self.values[setting], self.sources[setting]) = (value, "config file")
            } else {
                (self.values[setting], self.sources[setting]) = (setting.defaultValue, "default")
            }
        }
    }

    /// Reads `VPP_NAME=value` lines; `#` starts a comment; values may be quoted. Unknown VPP_ names are errors, so a
    /// typo does not silently fall back to a default.
    static func readConfigFile(_ path: String) throws -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            throw SettingsError("Cannot read the config file at \(path).")
        }
        let known = Set(Setting.allCases.map(\.environmentName))
        var values: [String: String] = [:]
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw SettingsError("\(path):\(number + 1): expected NAME=value.")
            }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            guard known.contains(name) else {
                throw SettingsError("\(path):\(number + 1): unknown setting \(name). `vppd --help` lists them.")
            }
            values[name] = value
        }
        return values
    }

    public subscript(_ setting: Setting) -> String {
        self.values[setting] ?? setting.defaultValue
    }

    public func string(_ setting: Setting) -> String { self[setting] }

    public func int(_ setting: Setting, in range: ClosedRange<Int>) throws -> Int {
        guard let value = Int(self[setting]), range.contains(value) else {
            throw SettingsError(
                "\(setting.environmentName) / --\(setting.rawValue) must be a whole number in \(range.lowerBound)...\(range.upperBound); got \"\(self[setting])\"."
            )
        }
        return value
    }

    /// true/false (also yes/no, 1/0, on/off).
    public func bool(_ setting: Setting) throws -> Bool {
        switch self[setting].lowercased() {
        case "true", "yes", "1", "on": return true
        case "false", "no", "0", "off", "": return false
        default:
            throw SettingsError(
                "\(setting.environmentName) / --\(setting.rawValue) must be true or false; got \"\(self[setting])\"."
            )
        }
    }

    /// A duration such as `30s`, `500ms`, `5m`, `1h`, or a number of seconds.
    public func duration(_ setting: Setting) throws -> Duration {
        guard let duration = Self.parseDuration(self[setting]) else {
            throw SettingsError(
                "\(setting.environmentName) / --\(setting.rawValue) must be a duration like 30s, 500ms or 5m; got \"\(self[setting])\"."
            )
        }
        return duration
    }

    static func parseDuration(_ text: String) -> Duration? {
        let text = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number >= 0, number.isFinite else { return nil }
            return .milliseconds(Int64((number * scale * 1000).rounded()))
        }
        guard let seconds = Double(text), seconds >= 0, seconds.isFinite else { return nil }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// The settings as `NAME=value  # source` lines, secrets hidden.
    public func describe() -> String {
        Setting.allCases.map { setting in
            let value = setting.isSecret && !self[setting].isEmpty ? "<hidden>" : self[setting]
            return "\(setting.environmentName)=\(value)  # \(self.sources[setting] ?? "default")"
        }.joined(separator: "\n")
    }
}

public struct SettingsError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
