import Foundation
import Testing
import VPPDaemon
import VPPTesting

@Suite("vppd settings")
struct SettingsTests {
    private func writeConfig(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "vppd-\(UUID().uuidString).env"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("flags win over the environment, which wins over the config file, which wins over defaults")
    func precedence() throws {
        let file = try self.writeConfig(
            """
            # comment
            VPP_PORT=9001
            VPP_HOST = "10.0.0.1"
            VPP_IDLE_TIMEOUT=45s
            VPP_LOG_LEVEL='debug'
            """
        )
        let settings = try ResolvedSettings(
            flags: [.port: "9003"],
            environment: ["VPP_PORT": "9002", "VPP_HOST": "127.0.0.2"],
            configFile: file
        )
        #expect(settings[.port] == "9003")
        #expect(settings.sources[.port] == "flag")
        #expect(settings[.host] == "127.0.0.2")
        #expect(settings.sources[.host] == "environment")
        #expect(try settings.duration(.idleTimeout) == .seconds(45))
        #expect(settings.sources[.idleTimeout] == "config file")
        #expect(settings[.logLevel] == "debug")
        #expect(settings[.maxFrameBytes] == "4194304")
        #expect(settings.sources[.maxFrameBytes] == "default")
    }

    @Test("the config file path can come from VPP_CONFIG")
    func configFromEnvironment() throws {
        let file = try self.writeConfig("VPP_MAX_CONNECTIONS=77\n")
        let settings = try ResolvedSettings(flags: [:], environment: ["VPP_CONFIG": file], configFile: nil)
        #expect(try settings.int(.maxConnections, in: 1...100) == 77)
    }

    @Test("an unknown name, a line without '=', and a missing file are errors that say where")
    func badConfigFiles() throws {
        let typo = try self.writeConfig("VPP_PROT=1\n")
        #expect(throws: SettingsError.self) { try ResolvedSettings(flags: [:], environment: [:], configFile: typo) }
        let noEquals = try self.writeConfig("VPP_PORT 1\n")
        do {
            _ = try ResolvedSettings(flags: [:], environment: [:], configFile: noEquals)
            Issue.record("expected an error")
        } catch let error as SettingsError {
            #expect(error.description.contains(":1:"))
        }
        #expect(throws: SettingsError.self) {
            try ResolvedSettings(flags: [:], environment: [:], configFile: "/nonexistent/vppd.env")
        }
    }

    @Test("numbers and durations out of range are refused with the setting's names")
    func validation() throws {
        let settings = try ResolvedSettings(
            flags: [.port: "70000", .idleTimeout: "soon", .shutdownGrace: "1.5m"],
            environment: [:],
            configFile: nil
        )
        do {
            _ = try settings.int(.port, in: 0...65535)
            Issue.record("expected an error")
        } catch let error as SettingsError {
            #expect(error.description.contains("VPP_PORT"))
            #expect(error.description.contains("--port"))
        }
        #expect(throws: SettingsError.self) { try settings.duration(.idleTimeout) }
        #expect(try settings.duration(.shutdownGrace) == .seconds(90))
    }

    @Test("every setting has a distinct environment name, a help text and shows its default")
    func helpCoversEverySetting() {
        let names = Setting.allCases.map(\.environmentName)
        #expect(Set(names).count == names.count)
        for setting in Setting.allCases {
            #expect(setting.help.contains(setting.environmentName))
            #expect(setting.help.contains("default"))
        }
    }

    @Test("describing the settings hides secrets")
    func secretsHidden() throws {
        let settings = try ResolvedSettings(
            flags: [
                .databaseURL: "postgres://vpp:hunter2@db/vpp",
                .bootstrapOperatorKey: "k" + String(repeating: "x", count: 40),
            ],
            environment: [:],
            configFile: nil
        )
        let text = settings.describe()
        #expect(!text.contains("hunter2"))
        #expect(!text.contains("kxxxx"))
        #expect(text.contains("VPP_DATABASE_URL=<hidden>"))
    }

    @Test("without TLS files vppd serves plain TCP on loopback only, unless --allow-plaintext says otherwise")
    func plaintextOnlyOnLoopback() throws {
        for host in ["127.0.0.1", "::1", "localhost"] {
            let settings = try ResolvedSettings(flags: [.host: host], environment: [:], configFile: nil)
            #expect(try settings.serverTLS() == nil)
        }
        for host in ["0.0.0.0", "10.1.2.3", "vpp.example.com"] {
            let settings = try ResolvedSettings(flags: [.host: host], environment: [:], configFile: nil)
            #expect {
                try settings.serverTLS()
            } throws: { error in
                "\(error)".contains("--tls-cert-file") && "\(error)".contains("clear text")
            }
            let allowed = try ResolvedSettings(
                flags: [.host: host],
                environment: ["VPP_ALLOW_PLAINTEXT": "true"],
                configFile: nil
            )
            #expect(try allowed.serverTLS() == nil)
        }
        let typo = try ResolvedSettings(
            flags: [.host: "0.0.0.0", .allowPlaintext: "ture"],
            environment: [:],
            configFile: nil
        )
        #expect(throws: SettingsError.self) { try typo.serverTLS() }
    }

    @Test("TLS needs both files, and a bad file is named in the error")
    func tlsFiles() async throws {
        let certificates = try await TestCertificates.make()
        let both = try ResolvedSettings(
            flags: [.host: "0.0.0.0", .tlsCertFile: certificates.certificateFile, .tlsKeyFile: certificates.keyFile],
            environment: [:],
            configFile: nil
        )
        #expect(try both.serverTLS() != nil)
        let one = try ResolvedSettings(
            flags: [.tlsCertFile: certificates.certificateFile],
            environment: [:],
            configFile: nil
        )
        #expect { try one.serverTLS() } throws: { "\($0)".contains("both") }
        let missing = try ResolvedSettings(
            flags: [.tlsCertFile: "/nonexistent/cert.pem", .tlsKeyFile: certificates.keyFile],
            environment: [:],
            configFile: nil
        )
        #expect { try missing.serverTLS() } throws: { "\($0)".contains("/nonexistent/cert.pem") }
    }
}
