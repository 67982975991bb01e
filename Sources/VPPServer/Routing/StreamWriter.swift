public import VPPProto

/// Sends the messages of a server-streaming call. Each `send` returns once the message is written to the socket,
/// so a handler that produces faster than the client reads is slowed down instead of filling memory.
public struct ResponseStream<Message: ProtoMessage>: Sendable {
    let sendBytes: @Sendable ([UInt8]) async throws -> Void

    init(sendBytes: @escaping @Sendable ([UInt8]) async throws -> Void) {
        self.sendBytes = sendBytes
    }

    /// Sends one message. Throws when the call is over (cancelled, deadline, connection closed).
    public func send(_ message: Message) async throws {
        try await self.sendBytes(message.serializedBytes())
    }
}
