import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import VPPClient
import VPPProto
import VPPWire

/// A server whose first connection closes (GoAway, idle timeout, last_call_id 0) as soon as a call arrives, as a
/// real server does when its idle timeout races a client's call; later connections answer calls normally.
private final class RacingServerHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let connectionNumber: Int

    init(connectionNumber: Int) { self.connectionNumber = connectionNumber }

    private func send(_ kind: RpcV1.ServerFrame.Kind, context: ChannelHandlerContext) {
        let frame = RpcV1.ServerFrame(kind: kind)
        var buffer = context.channel.allocator.buffer(capacity: 32)
        try? buffer.writeFrame(frame)
        context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let frame = try? RpcV1.ClientFrame(buffer: self.unwrapInboundIn(data)) else { return }
        switch frame.kind {
        case .hello:
            self.send(.welcome(RpcV1.Welcome()), context: context)
        case .call(let call) where self.connectionNumber == 1:
            _ = call
            self.send(
                .goAway(
                    ServerConnectionStateMachine.goAwayValue(
                        RpcV1.Status(code: .unavailable, message: "idle", reason: GoAwayReason.idleTimeout.rawValue)
                    )
                ),
                context: context
            )
            context.close(promise: nil)
        case .call(let call):
            self.send(
                ServerConnectionStateMachine.finalReply(callID: call.callId, status: .ok, message: []).kind!,
                context: context
            )
        default:
            break
        }
    }
}

extension ServerConnectionStateMachine where Principal == Never {
    fileprivate static func goAwayValue(_ status: RpcV1.Status) -> RpcV1.GoAway {
        guard case .goAway(let goAway) = Self.goAway(status, lastCallID: 0).kind else { fatalError() }
        return goAway
    }
}

@Suite("Client retries of calls the server never started")
struct ClientRetryTests {
    @Test("a call the server closed the connection on before starting it is sent again on a new connection")
    func retriedAfterGoAway() async throws {
        let connections = NIOLockedValueBox(0)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                let number = connections.withLockedValue { count -> Int in
                    count += 1
                    return count
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1 << 20))
                    )
                    try channel.pipeline.syncOperations.addHandler(RacingServerHandler(connectionNumber: number))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!

        let client = VPPClient(ClientConfiguration(port: port, apiKey: "any"))
        _ = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest(), timeout: .seconds(10))
        #expect(connections.withLockedValue { $0 } == 2)
        await client.close()

        // Without reconnecting, the caller sees the server's status.
        connections.withLockedValue { $0 = 0 }
        let noRetry = VPPClient(ClientConfiguration(port: port, apiKey: "any", reconnect: false))
        do {
            _ = try await noRetry.call(VppV1.SystemService.Ping.self, VppV1.PingRequest(), timeout: .seconds(10))
            Issue.record("expected UNAVAILABLE")
        } catch let error as RPCError {
            #expect(error.code == .unavailable)
            #expect(error.reason == GoAwayReason.idleTimeout.rawValue)
        }
        await noRetry.close()
        try await channel.close()
    }
}
