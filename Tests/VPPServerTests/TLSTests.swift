import Foundation
import Testing
import VPPClient
import VPPProto
import VPPServer
import VPPTesting
import VPPWire

/// TLS on the RPC port: the client verifies the server's certificate (chain and name) and refuses what it cannot
/// verify, before the API key is sent.
@Suite("TLS")
struct TLSTests {
    private func ping(
        port: Int,
        host: String = "127.0.0.1",
        security: TransportSecurity
    ) async throws -> [UInt8] {
        let client = VPPClient(
            ClientConfiguration(
                host: host,
                port: port,
                apiKey: TestServer.tenantKey,
                reconnect: false,
                security: security
            )
        )
        return try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest(payload: Array("over tls".utf8)))
            .payload
    }

    /// The RPCError `body` throws; fails the test when it succeeds.
    private func failure(
        _ body: () async throws -> [UInt8],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> RPCError {
        try #require(await rpcError { _ = try await body() }, sourceLocation: sourceLocation)
    }

    private func startTLSServer(_ certificates: TestCertificates) async throws -> TestServer {
        let tls = try ServerTLS.load(
            certificateChainFile: certificates.certificateFile,
            privateKeyFile: certificates.keyFile
        )
        return try await TestServer.start { $0.tls = tls }
    }

    @Test("a client that trusts the server's CA calls over TLS, by IP address and by DNS name")
    func callsOverTLS() async throws {
        let certificates = try await TestCertificates.make()
        let server = try await self.startTLSServer(certificates)
        let trusted = TransportSecurity.tls(ClientTLS(trustRootsFile: certificates.caFile))
        #expect(try await self.ping(port: server.port, security: trusted) == Array("over tls".utf8))
        #expect(try await self.ping(port: server.port, host: "localhost", security: trusted) == Array("over tls".utf8))
        #expect(server.probe.counts.started == 2)
        await server.server.shutdown(gracePeriod: .zero)
    }

    @Test("a certificate the client cannot verify is refused before any call, with a message that says what to do")
    func refusesUnverifiedServer() async throws {
        let certificates = try await TestCertificates.make()
        let otherCA = try await TestCertificates.make()
        let server = try await self.startTLSServer(certificates)

        // The system's CAs do not know the test CA; nor does a client that trusts another private CA.
        for security in [TransportSecurity.tls(ClientTLS()), .tls(ClientTLS(trustRootsFile: otherCA.caFile))] {
            let error = try await self.failure { try await self.ping(port: server.port, security: security) }
            #expect(error.code == .unavailable)
            #expect(error.message.contains("cannot be verified"), "\(error.message)")
            #expect(error.message.contains("--ca-file"), "\(error.message)")
        }

        #expect(server.probe.counts.started == 0, "no call may reach a server the client did not verify")
        await server.server.shutdown(gracePeriod: .zero)
    }

    @Test("the certificate must be for the address connected to, or for the name given with serverName")
    func verifiesName() async throws {
        let certificates = try await TestCertificates.make(names: ["vpp.internal"])
        let server = try await self.startTLSServer(certificates)
        for security in [
            TransportSecurity.tls(ClientTLS(trustRootsFile: certificates.caFile)),
            .tls(ClientTLS(trustRootsFile: certificates.caFile, serverName: "vpp.example.com")),
        ] {
            let error = try await self.failure { try await self.ping(port: server.port, security: security) }
            #expect(error.code == .unavailable)
            #expect(error.message.contains("not for this address"), "\(error.message)")
        }
        #expect(server.probe.counts.started == 0)
        let named = TransportSecurity.tls(ClientTLS(trustRootsFile: certificates.caFile, serverName: "vpp.internal"))
        #expect(try await self.ping(port: server.port, security: named) == Array("over tls".utf8))
        await server.server.shutdown(gracePeriod: .zero)
    }

    @Test("plain TCP against a TLS port, and TLS against a plain port, fail with a message that names TLS")
    func mismatchedTransport() async throws {
        let certificates = try await TestCertificates.make()
        let tlsServer = try await self.startTLSServer(certificates)
        let plainError = try await self.failure { try await self.ping(port: tlsServer.port, security: .plaintext) }
        #expect(plainError.code == .unavailable)
        #expect(plainError.message.contains("TLS"), "\(plainError.message)")

        let plainServer = try await TestServer.start()
        let tlsError = try await self.failure {
            try await self.ping(port: plainServer.port, security: .tls(ClientTLS(trustRootsFile: certificates.caFile)))
        }
        #expect(tlsError.code == .unavailable)
        #expect(tlsError.message.contains("TLS"), "\(tlsError.message)")
        #expect(tlsServer.probe.counts.started == 0 && plainServer.probe.counts.started == 0)
        await tlsServer.server.shutdown(gracePeriod: .zero)
        await plainServer.server.shutdown(gracePeriod: .zero)
    }

    @Test("by default the client uses TLS for every address but loopback")
    func automaticSecurity() {
        #expect(TransportSecurity.automatic.resolved(host: "127.0.0.1") == nil)
        #expect(TransportSecurity.automatic.resolved(host: "::1") == nil)
        #expect(TransportSecurity.automatic.resolved(host: "localhost") == nil)
        #expect(TransportSecurity.automatic.resolved(host: "10.0.0.5") == ClientTLS())
        #expect(TransportSecurity.automatic.resolved(host: "vpp.example.com") == ClientTLS())
        #expect(TransportSecurity.automatic.resolved(host: "127.example.com") == ClientTLS())
        #expect(TransportSecurity.plaintext.resolved(host: "10.0.0.5") == nil)
    }

    @Test("a key file that is not a key, or a certificate file that holds none, is refused with the file's name")
    func badFiles() async throws {
        let certificates = try await TestCertificates.make()
        #expect {
            try ServerTLS.load(certificateChainFile: certificates.keyFile, privateKeyFile: certificates.keyFile)
        } throws: { "\($0)".contains(certificates.keyFile) }
        #expect {
            try ServerTLS.load(certificateChainFile: certificates.certificateFile, privateKeyFile: certificates.caFile)
        } throws: { "\($0)".contains(certificates.caFile) }
        let otherCA = try await TestCertificates.make()
        #expect {
            try ServerTLS.load(certificateChainFile: certificates.certificateFile, privateKeyFile: otherCA.keyFile)
        } throws: { "\($0)".contains("usable pair") }
    }
}
