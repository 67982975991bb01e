public import NIOCore
import NIOPosix
public import VPPProto
import VPPWire

/// A bare TCP connection to the RPC port for tests that send hand-made bytes (garbage, oversized, truncated
/// frames) and read what the server answers, frame by frame.
public final class RawConnection: Sendable {
    public let channel: any Channel
    private let frames: AsyncStream<ServerEvent>
    private let iterator: IteratorBox

    /// What arrived from the server.
    public enum ServerEvent: Sendable, Equatable {
        case frame(RpcV1.ServerFrame)
        /// Bytes that are not a ServerFrame.
        case undecodable
        case closed
        /// Nothing happened within the wait's timeout.
        case timedOut
    }

    private final class IteratorBox: @unchecked Sendable {
        // Only used by one test task at a time.
        var iterator: AsyncStream<ServerEvent>.AsyncIterator
        init(_ iterator: AsyncStream<ServerEvent>.AsyncIterator) { self.iterator = iterator }
    }

    public static func connect(host: String = "127.0.0.1", port: Int) async throws -> RawConnection {
        let (stream, continuation) = AsyncStream<ServerEvent>.makeStream()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(FrameDecoder(maxFrameBytes: 256 * 1024 * 1024))
                    )
                    try channel.pipeline.syncOperations.addHandler(Collector(continuation: continuation))
                }
            }
            .connect(host: host, port: port)
            .get()
        return RawConnection(channel: channel, frames: stream)
    }

    private init(channel: any Channel, frames: AsyncStream<ServerEvent>) {
        self.channel = channel
        self.frames = frames
        self.iterator = IteratorBox(frames.makeAsyncIterator())
    }

    /// Sends bytes exactly as given.
    public func send(bytes: [UInt8]) async throws {
        var buffer = self.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try await self.channel.writeAndFlush(buffer)
    }

    /// Sends one well-formed frame holding `frame`.
    public func send(_ frame: RpcV1.ClientFrame) async throws {
        var buffer = self.channel.allocator.buffer(capacity: 64)
        try buffer.writeFrame(frame)
        try await self.channel.writeAndFlush(buffer)
    }

    /// Sends a Hello with this key.
    public func hello(apiKey: String) async throws {
        try await self.send(RpcV1.ClientFrame(kind: .hello(RpcV1.Hello(apiKey: apiKey, protocolVersion: 1))))
    }

    /// The next thing the server did: a frame, or closing the connection (then `.closed` forever). After `timeout`
    /// without either, `.timedOut`: a test waiting for the server fails instead of hanging the whole run.
    public func next(timeout: Duration = .seconds(30)) async -> ServerEvent {
        let box = self.iterator
        return await withTaskGroup(of: ServerEvent.self) { group in
            group.addTask { await box.iterator.next() ?? .closed }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return .timedOut
            }
            let first = await group.next() ?? .timedOut
            group.cancelAll()
            return first
        }
    }

    /// Reads events until the connection closes and returns the frames that came before.
    public func framesUntilClosed() async -> [RpcV1.ServerFrame] {
        var frames: [RpcV1.ServerFrame] = []
        while case .frame(let frame) = await self.next() {
            frames.append(frame)
        }
        return frames
    }

    public func close() async {
        try? await self.channel.close()
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let continuation: AsyncStream<ServerEvent>.Continuation
        init(continuation: AsyncStream<ServerEvent>.Continuation) { self.continuation = continuation }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = self.unwrapInboundIn(data)
            if let frame = try? RpcV1.ServerFrame(buffer: buffer) {
                self.continuation.yield(.frame(frame))
            } else {
                self.continuation.yield(.undecodable)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.continuation.yield(.closed)
            self.continuation.finish()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
