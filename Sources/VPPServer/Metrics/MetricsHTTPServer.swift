public import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
public import ServiceLifecycle
import VPPLogKeys

/// A small HTTP endpoint for operations: `GET /metrics` (Prometheus text format), `GET /healthz` (liveness: the
/// process serves HTTP) and `GET /readyz` (readiness: whatever `ready` reports, e.g. database reachable and
/// migrations done). Anything else answers 404.
public final class MetricsHTTPServer: Service, Sendable {
    public typealias Readiness = @Sendable () async -> (ready: Bool, detail: String)

    private let host: String
    private let port: Int
    private let render: @Sendable () -> [UInt8]
    private let ready: Readiness
    private let logger: Logger
    private let channel = NIOLockedValueBox<(any Channel)?>(nil)

    /// - Parameter render: produces the metrics text (e.g. `PrometheusCollectorRegistry.emitToBuffer`).
    public init(
        host: String,
        port: Int,
        logger: Logger,
        render: @escaping @Sendable () -> [UInt8],
        ready: @escaping Readiness = { (true, "ok") }
    ) {
        self.host = host
        self.port = port
        self.render = render
        self.ready = ready
        self.logger = logger
    }

    public var localPort: Int? { self.channel.withLockedValue { $0?.localAddress?.port } }

    public func start() async throws {
        let render = self.render
        let ready = self.ready
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(OperationsHTTPHandler(render: render, ready: ready))
                }
            }
            .bind(host: self.host, port: self.port)
            .get()
        self.channel.withLockedValue { $0 = channel }
        self.logger.info(
            "Metrics and health endpoint listening",
            metadata: [LogKey.address: "\(channel.localAddress.map { "\($0)" } ?? "?")"]
        )
    }

    public func run() async throws {
        try await self.start()
        try? await gracefulShutdown()
        await self.stop()
    }

    public func stop() async {
        let channel = self.channel.withLockedValue { channel -> (any Channel)? in
            defer { channel = nil }
            return channel
        }
        try? await channel?.close()
    }
}

private final class OperationsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () -> [UInt8]
    private let ready: MetricsHTTPServer.Readiness
    private var request: HTTPRequestHead?

    init(render: @escaping @Sendable () -> [UInt8], ready: @escaping MetricsHTTPServer.Readiness) {
        self.render = render
        self.ready = ready
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.request = head
        case .body:
            break
        case .end:
            guard let head = self.request else { return }
            self.request = nil
            let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
            let keepAlive = head.isKeepAlive
            guard head.method == .GET || head.method == .HEAD else {
                self.respond(
                    context: context,
                    status: .methodNotAllowed,
                    body: Array("only GET\n".utf8),
                    keepAlive: keepAlive
                )
                return
            }
            switch path {
            case "/metrics":
                self.respond(
                    context: context,
                    status: .ok,
                    body: self.render(),
                    contentType: "text/plain; version=0.0.4; charset=utf-8",
                    keepAlive: keepAlive
                )
            case "/healthz":
                self.respond(context: context, status: .ok, body: Array("ok\n".utf8), keepAlive: keepAlive)
            case "/readyz":
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                let ready = self.ready
                Task {
                    let (isReady, detail) = await ready()
                    loopBound.eventLoop.execute {
                        let (handler, context) = loopBound.value
                        handler.respond(
                            context: context,
                            status: isReady ? .ok : .serviceUnavailable,
                            body: Array((detail + "\n").utf8),
                            keepAlive: keepAlive
                        )
                    }
                }
            default:
                self.respond(context: context, status: .notFound, body: Array("not found\n".utf8), keepAlive: keepAlive)
            }
        }
    }

    private func respond(
        context: ChannelHandlerContext,
        status: HTTPResponseStatus,
        body: [UInt8],
        contentType: String = "text/plain; charset=utf-8",
        keepAlive: Bool
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.count)")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
            promise: nil
        )
        var buffer = context.channel.allocator.buffer(capacity: body.count)
        buffer.writeBytes(body)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
