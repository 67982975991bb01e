import Foundation
import Logging
import VPPLogKeys
import VPPStorage

/// Finds the key that seals VPP token files at rest: `--token-key`, else `--token-key-file`, else (only with the
/// embedded database, i.e. a local run) `<data-dir>/token.key`, created on first start with mode 0600.
enum TokenKey {
    static func load(settings: ResolvedSettings, logger: Logger) throws -> TokenCipher {
        do {
            if !settings[.tokenKey].isEmpty {
                return try TokenCipher(base64Key: settings[.tokenKey])
            }
            if !settings[.tokenKeyFile].isEmpty {
                return try TokenCipher(base64Key: try Self.read(settings[.tokenKeyFile]))
            }
        } catch let error as TokenCipherError {
            throw SettingsError("The token key is unusable: \(error).")
        }
        guard settings[.databaseURL].isEmpty else {
            throw SettingsError(
                "Set VPP_TOKEN_KEY_FILE (or VPP_TOKEN_KEY): the key that encrypts VPP tokens at rest. Make one with: head -c 32 /dev/urandom | base64 > token.key; chmod 600 token.key. Keep it with the database's backups: tokens cannot be read without it."
            )
        }
        let directory = URL(fileURLWithPath: settings[.dataDir]).standardizedFileURL.path
        let path = directory + "/token.key"
        if !FileManager.default.fileExists(atPath: path) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let created = FileManager.default.createFile(
                atPath: path,
                contents: Data((TokenCipher.generateKeyText() + "\n").utf8),
                attributes: [.posixPermissions: 0o600]
            )
            guard created else { throw SettingsError("Cannot create the token key at \(path).") }
            logger.notice("Created a token encryption key for the local run", metadata: [LogKey.path: "\(path)"])
        }
        do {
            return try TokenCipher(base64Key: try Self.read(path))
        } catch let error as TokenCipherError {
            throw SettingsError("The token key at \(path) is unusable: \(error).")
        }
    }

    private static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SettingsError("Cannot read the token key file at \(path).")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
