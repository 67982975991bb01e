import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import Testing
import VPPClient
import VPPProto
import VPPServer
import VPPTesting

/// The process-wide metrics backend can be bootstrapped only once; every test that reads metrics shares it.
enum SharedMetrics {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}

@Suite("Metrics and health endpoint")
struct MetricsEndpointTests {
    /// A plain HTTP/1.0 GET over a socket, so the test needs no HTTP client.
    private func get(_ path: String, port: Int) async throws -> (status: Int, body: String) {
        let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
        final class Collector: ChannelInboundHandler, Sendable {
            typealias InboundIn = ByteBuffer
            let continuation: AsyncStream<ByteBuffer>.Continuation
            init(_ continuation: AsyncStream<ByteBuffer>.Continuation) { self.continuation = continuation }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                self.continuation.yield(self.unwrapInboundIn(data))
            }
            func channelInactive(context: ChannelHandlerContext) { self.continuation.finish() }
        }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(continuation))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: "GET \(path) HTTP/1.0\r\n\r\n"))
        var text = ""
        for await chunk in stream { text += String(buffer: chunk) }
        let statusLine = text.split(separator: "\r\n").first ?? ""
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        return (status, body)
    }

    @Test("/metrics shows calls by method and status, latency, connections and rejected frames")
    func metrics() async throws {
        let registry = SharedMetrics.registry
        let server = try await RPCServer.testServer()
        let client = VPPClient(ClientConfiguration(port: server.localPort!, apiKey: "k"))
        _ = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest())
        _ = try? await client.call(VppV1.TokenService.ListTokens.self, VppV1.ListTokensRequest())
        let raw = try await RawConnection.connect(port: server.localPort!)
        try await raw.send(bytes: [0xFF, 0xFF, 0xFF, 0xFF])
        _ = await raw.framesUntilClosed()

        let endpoint = MetricsHTTPServer(
            host: "127.0.0.1",
            port: 0,
            logger: Logger(label: "test"),
            render: { registry.emitToBuffer() },
            ready: { (false, "database unreachable") }
        )
        try await endpoint.start()
        let port = try #require(endpoint.localPort)
        let (status, body) = try await self.get("/metrics", port: port)
        #expect(status == 200)
        #expect(body.contains(#"vpp_rpc_calls_total{method="/vpp.v1.SystemService/Ping",status="OK"}"#))
        #expect(body.contains(#"vpp_rpc_calls_total{method="/vpp.v1.TokenService/ListTokens",status="UNIMPLEMENTED"}"#))
        #expect(body.contains("vpp_rpc_call_duration_seconds_bucket"))
        #expect(body.contains("vpp_rpc_connections_open"))
        #expect(body.contains(#"vpp_rpc_frames_rejected_total{reason="too_large"}"#))

        #expect(try await self.get("/healthz", port: port).status == 200)
        let ready = try await self.get("/readyz", port: port)
        #expect(ready.status == 503)
        #expect(ready.body.contains("database unreachable"))
        #expect(try await self.get("/nope", port: port).status == 404)
        await client.close()
        await endpoint.stop()
        await server.shutdown(gracePeriod: .seconds(1))
    }
}

extension RPCServer {
    /// A server with the system service and one key, "k".
    static func testServer() async throws -> RPCServer {
        var router = RPCRouter()
        router.registerSystemService()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let server = RPCServer(
            configuration: ServerConfiguration(host: "127.0.0.1", port: 0),
            router: router,
            authenticator: StaticAuthenticator([
                "k": Principal(kind: .tenant, tenantID: "t", keyID: "key", keyName: "k")
            ]),
            logger: logger
        )
        try await server.start()
        return server
    }
}
