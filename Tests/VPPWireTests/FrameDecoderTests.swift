import NIOCore
import Testing
import VPPTestSupport
import VPPWire

@Suite("Frame decoder")
struct FrameDecoderTests {
    private func frame(_ body: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        let length = UInt32(body.count)
        bytes += [UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)]
        return bytes + body
    }

    /// Feeds the chunks one by one into a decoder, as reads from a socket would, and collects the frames.
    private func decode(_ chunks: [[UInt8]], maxFrameBytes: Int = 1024, eof: Bool = false) throws -> [[UInt8]] {
        var decoder = FrameDecoder(maxFrameBytes: maxFrameBytes)
        var buffer = ByteBuffer()
        var frames: [[UInt8]] = []
        for chunk in chunks {
            buffer.writeBytes(chunk)
            while let frame = try decoder.decode(buffer: &buffer) {
                frames.append(Array(frame.readableBytesView))
            }
            buffer.discardReadBytes()
        }
        if eof {
            while let frame = try decoder.decodeLast(buffer: &buffer, seenEOF: true) {
                frames.append(Array(frame.readableBytesView))
            }
        }
        return frames
    }

    @Test("a frame split into single bytes across reads decodes once it is complete")
    func frameSplitAcrossReads() throws {
        let body: [UInt8] = Array("hello, frames".utf8)
        let chunks = self.frame(body).map { [$0] }
        #expect(try self.decode(chunks) == [body])
    }

    @Test("many frames in one read all decode, in order")
    func manyFramesInOneRead() throws {
        let bodies: [[UInt8]] = (0..<50).map { index in Array(repeating: UInt8(index), count: index) }
        let oneRead = bodies.flatMap(self.frame)
        #expect(try self.decode([oneRead]) == bodies)
    }

    @Test("frames straddling read boundaries decode exactly")
    func framesStraddlingReads() throws {
        let bodies: [[UInt8]] = (1...20).map { Array(repeating: UInt8($0), count: $0 * 7) }
        let stream = bodies.flatMap(self.frame)
        // Cut the stream into reads of 5 bytes: prefixes and bodies are split everywhere.
        let chunks = stride(from: 0, to: stream.count, by: 5).map { Array(stream[$0..<min($0 + 5, stream.count)]) }
        #expect(try self.decode(chunks) == bodies)
    }

    @Test("a zero-length frame decodes as an empty body")
    func zeroLengthFrame() throws {
        #expect(try self.decode([self.frame([]) + self.frame([7])]) == [[], [7]])
    }

    @Test("a frame of exactly the maximum size is accepted")
    func maximumSizeFrame() throws {
        let body = [UInt8](repeating: 0xAB, count: 1024)
        #expect(try self.decode([self.frame(body)], maxFrameBytes: 1024) == [body])
    }

    @Test("an oversized frame is refused from its length prefix alone, before the body arrives")
    func oversizedFrameRefusedFromPrefix() throws {
        // Only the 4 prefix bytes are sent: the decoder must refuse without waiting for (or buffering) the body.
        #expect(throws: FrameError.tooLarge(length: 1025, limit: 1024)) {
            try self.decode([[0, 0, 4, 1]], maxFrameBytes: 1024)
        }
        #expect(throws: FrameError.tooLarge(length: Int(UInt32.max), limit: 4 * 1024 * 1024)) {
            try self.decode([[0xFF, 0xFF, 0xFF, 0xFF]], maxFrameBytes: 4 * 1024 * 1024)
        }
    }

    @Test("a stream that ends inside a frame's body is reported as truncated")
    func truncatedBody() throws {
        let truncated = Array(self.frame([1, 2, 3, 4, 5]).prefix(6))
        #expect(throws: FrameError.truncated(expected: 9, received: 6)) {
            try self.decode([truncated], eof: true)
        }
    }

    @Test("a stream that ends inside a length prefix is reported as truncated")
    func truncatedPrefix() throws {
        #expect(throws: FrameError.truncated(expected: 4, received: 2)) {
            try self.decode([self.frame([9]) + [0, 0]], eof: true)
        }
    }

    @Test("a clean end of stream after whole frames is not an error")
    func cleanEndOfStream() throws {
        #expect(try self.decode([self.frame([1]), self.frame([2])], eof: true) == [[1], [2]])
    }

    @Test("garbage bytes never crash the decoder: they decode as frames or fail with a FrameError")
    func garbageNeverCrashes() throws {
        var generator = SplitMix64(seed: 42)
        for _ in 0..<2000 {
            let count = Int(generator.next() % 64)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            do {
                _ = try self.decode([bytes], maxFrameBytes: 256, eof: true)
            } catch is FrameError {
                // expected for most inputs
            }
        }
    }
}
