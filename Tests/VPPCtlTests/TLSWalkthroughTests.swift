import Foundation
import Testing
import VPPServer
import VPPTesting

/// vppctl over TLS, as run against a production server: the real binary verifies the server's certificate against a
/// private CA (--ca-file), refuses a server it cannot verify with a line that says what to do, and never sends the key
/// in clear text to a server that is not on this machine unless told to.
@Suite struct TLSWalkthroughTests {
    @Test func vppctlVerifiesTheServersCertificate() async throws {
        let binary = try WalkthroughTests.binary()
        let certificates = try await TestCertificates.make()
        let otherCA = try await TestCertificates.make()
        let tls = try ServerTLS.load(
            certificateChainFile: certificates.certificateFile,
            privateKeyFile: certificates.keyFile
        )
        let server = try await TestVPPServer.start(prefix: "ctl_tls") { $0.tls = tls }
        let scratch = NSTemporaryDirectory() + "vppctl-tls-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let keyFile = scratch + "/operator.key"
        try (server.operatorKey + "\n").write(toFile: keyFile, atomically: true, encoding: .utf8)
        let environment = ["VPP_API_KEY_FILE": keyFile, "HOME": scratch, "PATH": "/usr/bin:/bin", "TERM": "dumb"]
        func vppctl(_ arguments: String...) async throws -> WalkthroughTests.Run {
            try await WalkthroughTests.vppctl(binary, arguments, environment: environment, scratch: scratch)
        }
        let address = "localhost:\(server.port)"

        // Trusting the private CA: the call goes through, and `config` says how the connection is protected.
        let ping = try await vppctl("ping", "--server", address, "--ca-file", certificates.caFile)
        #expect(ping.status == 0, "\(ping)")
        let config = try await vppctl("config", "--json", "--server", address, "--ca-file", certificates.caFile)
        #expect((config.json["transport"] as? String)?.hasPrefix("TLS, trusting the CA in") == true, "\(config)")

        // Another CA: refused before any call, exit 6 (UNAVAILABLE), with the advice to give the right CA.
        let wrongCA = try await vppctl("ping", "--server", address, "--ca-file", otherCA.caFile)
        #expect(wrongCA.status == 6, "\(wrongCA)")
        #expect(wrongCA.stderr.contains("cannot be verified") && wrongCA.stderr.contains("--ca-file"), "\(wrongCA)")

        // Plain TCP to a TLS port says TLS is the likely cause.
        let plain = try await vppctl("ping", "--server", address, "--plaintext")
        #expect(plain.status == 6, "\(plain)")
        #expect(plain.stderr.contains("TLS"), "\(plain)")

        // --plaintext and a TLS setting together are a contradiction, refused before connecting.
        let both = try await vppctl("ping", "--server", address, "--plaintext", "--ca-file", certificates.caFile)
        #expect(both.status == 5, "\(both)")

        // A server that is not on this machine gets TLS by default: `config` shows it without connecting.
        let remote = try await vppctl("config", "--json", "--server", "vpp.example.net:7443")
        #expect(remote.json["transport"] as? String == "TLS, trusting the system's CAs", "\(remote)")
        await server.stop()
    }
}
