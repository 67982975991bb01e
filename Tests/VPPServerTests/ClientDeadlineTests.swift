import NIOCore
import NIOPosix
import Testing
import VPPClient
import VPPProto
import VPPWire

/// A server that authenticates anyone and then never answers a call: what a hung or partitioned server looks like.
private final class SilentServerHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let frame = try? RpcV1.ClientFrame(buffer: self.unwrapInboundIn(data)), case .hello = frame.kind else {
            return
        }
        let out = RpcV1.ServerFrame(kind: .welcome(RpcV1.Welcome()))
        var buffer = context.channel.allocator.buffer(capacity: 16)
        try? buffer.writeFrame(out)
        context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
    }
}

@Suite("Client deadlines")
struct ClientDeadlineTests {
    @Test("a call to a server that never answers fails with DEADLINE_EXCEEDED shortly after its deadline")
    func silentServer() async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1 << 20))
                    )
                    try channel.pipeline.syncOperations.addHandler(SilentServerHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = VPPClient(ClientConfiguration(port: channel.localAddress!.port!, apiKey: "any"))
        do {
            _ = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest(), timeout: .milliseconds(100))
            Issue.record("expected DEADLINE_EXCEEDED")
        } catch let error as RPCError {
            #expect(error.code == .deadlineExceeded)
        }
        await client.close()
        try await channel.close()
    }
}
