import Foundation

/// vppctl's config file: `key = value` lines, `#` comments. Keys: `server`, `api_key_file`, `api_key`, `timeout`.
///
/// ```
/// # ~/.config/vppctl/config
/// server = vpp.example.net:7443
/// api_key_file = ~/.config/vppctl/key
/// ```
public struct ConfigFile: Sendable, Equatable {
    public var path: String
    public var values: [String: String]

    public static let knownKeys: Set<String> = [
        "server", "api_key_file", "api_key", "timeout", "ca_file", "tls_server_name", "plaintext",
    ]

    public init(path: String, values: [String: String]) {
        self.path = path
        self.values = values
    }

    /// Parses the text of a config file; unknown keys and malformed lines are errors, so a typo is never silently
    /// ignored.
    public static func parse(_ text: String, path: String) throws(CtlError) -> ConfigFile {
        var values: [String: String] = [:]
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw CtlError.badInput(
                    "\(path):\(number + 1): expected `key = value`, found \"\(line)\"",
                    hint: "Fix the line or remove it."
                )
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.first == "\"", value.last == "\"" {
                value = String(value.dropFirst().dropLast())
            }
            guard Self.knownKeys.contains(key) else {
                throw CtlError.badInput(
                    "\(path):\(number + 1): unknown setting \"\(key)\"",
                    hint: "The settings are: \(Self.knownKeys.sorted().joined(separator: ", "))."
                )
            }
            values[key] = value
        }
        return ConfigFile(path: path, values: values)
    }

    /// The config file's path: `$VPPCTL_CONFIG`, else `$XDG_CONFIG_HOME/vppctl/config`, else
    /// `~/.config/vppctl/config`.
    public static func defaultPath(environment: [String: String]) -> String {
        if let explicit = environment["VPPCTL_CONFIG"], !explicit.isEmpty { return explicit }
        if let xdg = environment["XDG_CONFIG_HOME"], !xdg.isEmpty { return xdg + "/vppctl/config" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.config/vppctl/config"
    }

    static let defaultPathDescription = "~/.config/vppctl/config"

    /// Loads the file at `path`. A missing file is no error unless it was asked for by name (`required`).
    public static func load(path: String, required: Bool) throws(CtlError) -> ConfigFile? {
        guard FileManager.default.fileExists(atPath: path) else {
            if required {
                throw CtlError.badInput(
                    "the config file \(path) does not exist",
                    hint: "Create it (lines of `key = value`) or leave --config out."
                )
            }
            return nil
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CtlError.badInput(
                "cannot read the config file \(path): \(error.localizedDescription)",
                hint: "Check its permissions."
            )
        }
        return try Self.parse(text, path: path)
    }
}

/// Expands a leading `~/` to the home directory.
func expandTilde(_ path: String, environment: [String: String]) -> String {
    guard path.hasPrefix("~/") else { return path }
    let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
    return home + String(path.dropFirst())
}
