public import NIOCore
public import VPPProto

/// Why an outgoing message could not be framed.
public enum FrameEncodingError: Error, Equatable, Sendable {
    /// The encoded message is larger than the peer accepts; nothing was written.
    case tooLarge(length: Int, limit: Int)
}

extension ByteBuffer {
    /// Appends one frame holding `message`: the 4-byte big-endian length, then the message packed by protobuf-c
    /// straight into the buffer. Refuses (and writes nothing) when the message exceeds `maxFrameBytes`.
    @discardableResult
    public mutating func writeFrame(
        _ message: some ProtoMessage,
        maxFrameBytes: Int = Int(UInt32.max)
    ) throws(FrameEncodingError) -> Int {
        let result: Result<Int, FrameEncodingError> = message.withSerialized { size, pack in
            guard size <= maxFrameBytes else {
                return .failure(FrameEncodingError.tooLarge(length: size, limit: maxFrameBytes))
            }
            self.reserveCapacity(minimumWritableBytes: FrameDecoder.prefixLength + size)
            self.writeInteger(UInt32(size), endianness: .big)
            if size > 0 {
                self.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
                    pack(raw.baseAddress!)
                    return size
                }
            }
            return .success(FrameDecoder.prefixLength + size)
        }
        return try result.get()
    }

    /// Appends one frame with the given body bytes (used by tests and by tools that forward raw frames).
    @discardableResult
    public mutating func writeFrame(body: ByteBuffer) -> Int {
        self.writeInteger(UInt32(body.readableBytes), endianness: .big)
        var body = body
        return FrameDecoder.prefixLength + self.writeBuffer(&body)
    }
}

extension ProtoMessage {
    /// Decodes a message from the readable bytes of `buffer` without copying them.
    public init(buffer: ByteBuffer) throws(ProtoDecodingError) {
        let result: Result<Self, ProtoDecodingError> = buffer.withUnsafeReadableBytes { raw in
            do throws(ProtoDecodingError) {
                return .success(try Self(serializedBytes: raw))
            } catch {
                return .failure(error)
            }
        }
        self = try result.get()
    }
}
