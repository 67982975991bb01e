import Foundation
import Testing
import VPPTesting

/// Protos/README.md must be enough to write a client in another language: Scripts/protocol-client-example.py was
/// written from that page alone (standard-library Python, its own protobuf codec). These tests run it against a live
/// server.
@Suite("A client written from Protos/README.md alone")
struct ForeignClientTests {
    private static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    private func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let script = Self.repositoryRoot.appendingPathComponent("Scripts/protocol-client-example.py").path
        return try await runChildProcess("/usr/bin/env", ["python3", script] + arguments)
    }

    @Test("the Python client authenticates, pipelines Ping and WhoAmI, and gets a Pong")
    func pythonClientCalls() async throws {
        let server = try await TestServer.start()
        let result = try await self.run(["--port", "\(server.port)", "--api-key", TestServer.tenantKey])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("\"payload_echoed\": true"), "\(result.output)")
        #expect(result.output.contains("\"principal_kind\": \"tenant\""), "\(result.output)")
        await server.stop()
    }

    @Test("the Python client is refused with a wrong key (exit 3, UNAUTHENTICATED)")
    func pythonClientWrongKey() async throws {
        let server = try await TestServer.start()
        let result = try await self.run(["--port", "\(server.port)", "--api-key", "wrong"])
        #expect(result.status == 3, "\(result.output)")
        #expect(result.output.contains("UNAUTHENTICATED"), "\(result.output)")
        await server.stop()
    }

    @Test("the Python client sees UNIMPLEMENTED for an unknown method (exit 4)")
    func pythonClientUnknownMethod() async throws {
        let server = try await TestServer.start()
        let result = try await self.run([
            "raw-method", "--port", "\(server.port)", "--api-key", TestServer.tenantKey, "--method",
            "/vpp.v1.Nope/Nope",
        ])
        #expect(result.status == 4, "\(result.output)")
        #expect(result.output.contains("UNIMPLEMENTED"), "\(result.output)")
        await server.stop()
    }
}
