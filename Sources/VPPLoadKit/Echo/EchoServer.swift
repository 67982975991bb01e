public import NIOCore
public import NIOPosix
import VPPProto
import VPPWire

/// The transport's limit, for comparing with vppd's Ping: a minimal SwiftNIO server that speaks the same
/// length-prefixed frames and the same envelope, and answers every call with its own request bytes.
///
/// Per frame it does only what any server of this protocol must: split frames (`FrameDecoder`), unpack the
/// `ClientFrame` and pack the `ServerFrame` through libprotobuf-c. No authentication (any Hello gets a Welcome), no
/// routing, no call state, no logs, no metrics. Since `PingRequest` and `PingResponse` have the same layout, the
/// answer to a Ping is byte for byte what vppd sends, so `vpp-load ping` (the very same client) measures both.
public struct EchoServer: Sendable {
    public var host: String
    public var port: Int
    public var maxFrameBytes: Int

    public init(host: String, port: Int, maxFrameBytes: Int = 4 * 1024 * 1024) {
        self.host = host
        self.port = port
        self.maxFrameBytes = maxFrameBytes
    }

    /// Binds and returns the channel; the server runs until the channel is closed.
    public func start(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> any Channel {
        let maxFrameBytes = self.maxFrameBytes
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrameBytes))
                    )
                    try channel.pipeline.syncOperations.addHandler(EchoFrameHandler(maxFrameBytes: maxFrameBytes))
                }
            }
            .bind(host: self.host, port: self.port)
            .get()
    }
}

/// Answers frames one by one; flushes once per read burst, as vppd does.
final class EchoFrameHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let maxFrameBytes: Int
    private var pendingFlush = false

    init(maxFrameBytes: Int) {
        self.maxFrameBytes = maxFrameBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let body = self.unwrapInboundIn(data)
        let frame: RpcV1.ClientFrame
        do {
            frame = try RpcV1.ClientFrame(buffer: body)
        } catch {
            context.close(promise: nil)
            return
        }
        var answer = RpcV1.ServerFrame()
        switch frame.kind {
        case .hello:
            var welcome = RpcV1.Welcome()
            welcome.principalKind = "tenant"
            welcome.serverVersion = "vpp-load echo-server"
            welcome.protocolVersion = ServerConnectionStateMachine.protocolVersion
            welcome.maxFrameBytes = UInt32(self.maxFrameBytes)
            welcome.maxCallsInFlight = 1024
            answer.kind = .welcome(welcome)
        case .call(let call):
            answer = ServerConnectionStateMachine.finalReply(
                callID: call.callId,
                status: RpcV1.Status(code: .ok, message: ""),
                message: call.request
            )
        case .ping(let ping):
            var pong = RpcV1.Pong()
            pong.nonce = ping.nonce
            answer.kind = .pong(pong)
        case .cancel, .none:
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: body.readableBytes + 32)
        do {
            try buffer.writeFrame(answer, maxFrameBytes: self.maxFrameBytes)
        } catch {
            context.close(promise: nil)
            return
        }
        context.write(self.wrapOutboundOut(buffer), promise: nil)
        self.pendingFlush = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.pendingFlush {
            self.pendingFlush = false
            context.flush()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
