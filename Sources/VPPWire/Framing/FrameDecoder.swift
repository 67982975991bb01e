public import NIOCore

/// Why a byte stream is not a valid sequence of frames. The connection cannot continue after any of these.
public enum FrameError: Error, Equatable, Sendable {
    /// The length prefix announces more bytes than the connection allows. Refused before the body is read.
    case tooLarge(length: Int, limit: Int)
    /// The stream ended inside a frame.
    case truncated(expected: Int, received: Int)
    /// The server's budget for frames still arriving has no room for this one's announced length.
    case overBudget(length: Int, budget: Int)
}

/// Splits a byte stream into frames: a 4-byte big-endian unsigned length, then exactly that many bytes.
///
/// A value-type state machine with no I/O: NIO drives it through `ByteToMessageHandler`, and the tests drive it with
/// hand-made buffers (frames split across reads, many frames in one read, truncation, oversize).
public struct FrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    /// The length prefix's size in bytes.
    public static let prefixLength = 4

    public let limits: FrameLimits

    /// The largest frame the connection accepts now.
    public var maxFrameBytes: Int { self.limits.current }

    public init(maxFrameBytes: Int) {
        precondition(maxFrameBytes >= 0 && maxFrameBytes <= Int(UInt32.max), "maxFrameBytes out of range")
        self.limits = FrameLimits(maxFrameBytes: maxFrameBytes)
    }

    /// Limits that change (a small one before authentication) and a server-wide budget for partial frames.
    public init(limits: FrameLimits) {
        self.limits = limits
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return nil
        }
        let bodyLength = Int(length)
        // The limit is checked from the prefix alone, so an oversized frame is never buffered or allocated.
        let limit = self.limits.current
        guard bodyLength <= limit else {
            throw FrameError.tooLarge(length: bodyLength, limit: limit)
        }
        guard buffer.readableBytes >= Self.prefixLength + bodyLength else {
            // Still arriving: what it announced counts against the server's budget until it is complete.
            guard self.limits.reserve(bodyLength) else {
                throw FrameError.overBudget(length: bodyLength, budget: self.limits.budget?.limit ?? 0)
            }
            return nil
        }
        self.limits.releaseReservation()
        buffer.moveReaderIndex(forwardBy: Self.prefixLength)
        return buffer.readSlice(length: bodyLength)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        if let frame = try self.decode(buffer: &buffer) {
            return frame
        }
        self.limits.releaseReservation()
        let leftover = buffer.readableBytes
        guard leftover == 0 else {
            let expected: Int
            if let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) {
                expected = Self.prefixLength + Int(length)
            } else {
                expected = Self.prefixLength
            }
            buffer.moveReaderIndex(forwardBy: leftover)
            throw FrameError.truncated(expected: expected, received: leftover)
        }
        return nil
    }
}
