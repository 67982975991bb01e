import Foundation
import Testing
import VPPCtlKit

/// Where vppctl's connection settings come from: flags, then the environment, then the config file (C9).
@Suite struct ConnectionOptionsTests {
    /// A scratch directory with a config file and a key file.
    struct Scratch {
        let directory: String

        init() throws {
            self.directory = NSTemporaryDirectory() + "vppctl-tests-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        }

        func write(_ name: String, _ text: String) throws -> String {
            let path = self.directory + "/" + name
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true
            )
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        func remove() { try? FileManager.default.removeItem(atPath: self.directory) }
    }

    @Test func flagsBeatEnvironmentWhichBeatsTheConfigFile() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let fileKey = try scratch.write("file.key", "key-from-config-file\n")
        let flagKey = try scratch.write("flag.key", "key-from-flag-file\n")
        _ = try scratch.write(
            "vppctl/config",
            "# comment\nserver = config.example:7000\napi_key_file = \(fileKey)\ntimeout = 5s\n"
        )
        let environment = ["XDG_CONFIG_HOME": scratch.directory, "HOME": scratch.directory]

        // Only the config file.
        let fromFile = try ConnectionOptions.parse([]).resolve(environment: environment)
        #expect(fromFile.host == "config.example")
        #expect(fromFile.port == 7000)
        #expect(fromFile.apiKey == "key-from-config-file")
        #expect(fromFile.timeout == .seconds(5))
        #expect(fromFile.sources["server"] == "server in \(scratch.directory)/vppctl/config")

        // The environment beats the file.
        var withEnvironment = environment
        withEnvironment["VPP_SERVER"] = "env.example:7100"
        withEnvironment["VPP_API_KEY"] = "key-from-env"
        let fromEnvironment = try ConnectionOptions.parse([]).resolve(environment: withEnvironment)
        #expect(fromEnvironment.host == "env.example")
        #expect(fromEnvironment.port == 7100)
        #expect(fromEnvironment.apiKey == "key-from-env")
        #expect(fromEnvironment.sources["api_key"] == "VPP_API_KEY")

        // Flags beat both.
        let fromFlags = try ConnectionOptions.parse(["--server", "[::1]:7200", "--api-key-file", flagKey])
            .resolve(environment: withEnvironment)
        #expect(fromFlags.host == "::1")
        #expect(fromFlags.port == 7200)
        #expect(fromFlags.apiKey == "key-from-flag-file")
        #expect(fromFlags.sources["api_key"]?.hasPrefix("--api-key-file") == true)

        // And the configuration the client gets is made from the resolved settings.
        let configuration = fromFlags.clientConfiguration()
        #expect(configuration.host == "::1")
        #expect(configuration.port == 7200)
        #expect(configuration.apiKey == "key-from-flag-file")
    }

    @Test func defaultsWithoutAConfigFileAndAKeyFromTheEnvironment() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let keyFile = try scratch.write("demo.key", "  the-key  \n")
        let resolved = try ConnectionOptions.parse([])
            .resolve(environment: ["HOME": scratch.directory, "VPP_API_KEY_FILE": keyFile])
        #expect(resolved.serverDescription == "127.0.0.1:7443")
        #expect(resolved.apiKey == "the-key")
        #expect(resolved.timeout == .seconds(60))
        #expect(resolved.configFile == nil)
    }

    @Test func noKeyAnywhereSaysWhereToPutOne() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        #expect {
            try ConnectionOptions.parse([]).resolve(environment: ["HOME": scratch.directory])
        } throws: { error in
            let error = error as? CtlError
            return error?.exitCode == .permission && error?.description.contains("--api-key-file") == true
        }
    }

    @Test func aKeyFileWithMoreThanTheKeyIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let keyFile = try scratch.write("two-lines", "tenant-id\nkey\n")
        #expect(throws: CtlError.self) {
            try ConnectionOptions.parse(["--api-key-file", keyFile]).resolve(environment: ["HOME": scratch.directory])
        }
    }

    @Test func anUnknownConfigSettingIsAnErrorNotIgnored() throws {
        #expect {
            try ConfigFile.parse("server = a:1\napi_kye = x\n", path: "/c")
        } throws: { error in
            (error as? CtlError)?.description.contains("unknown setting \"api_kye\"") == true
        }
    }

    @Test(arguments: [
        ("host.example:8000", "host.example", 8000),
        ("host.example", "host.example", 7443),
        ("[::1]:9000", "::1", 9000),
        ("10.0.0.1:1", "10.0.0.1", 1),
    ])
    func serverAddresses(text: String, host: String, port: Int) throws {
        let resolved = try ConnectionOptions.parse(["--server", text, "--api-key", "k"]).resolve(environment: [
            "HOME": "/nonexistent"
        ])
        #expect(resolved.host == host)
        #expect(resolved.port == port)
    }

    @Test(arguments: ["host:", "host:99999", "::1:80", ":80"])
    func badServerAddressesAreRefused(text: String) throws {
        #expect(throws: CtlError.self) {
            try ConnectionOptions.parse(["--server", text, "--api-key", "k"]).resolve(environment: [
                "HOME": "/nonexistent"
            ])
        }
    }
}
