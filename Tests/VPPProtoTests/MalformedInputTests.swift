import Testing
import VPPProto
import VPPTestSupport

@Suite("Malformed input throws ProtoDecodingError and never crashes")
struct MalformedInputTests {
    private static func sampleFrame() -> RpcV1.ClientFrame {
        var call = RpcV1.Call()
        call.callId = 123_456
        call.method = "/vpp.v1.TenantService/ListTokens"
        call.timeoutMs = 30_000
        var pair = RpcV1.KeyValue()
        pair.key = "request-id"
        pair.value = "abc"
        call.metadata = [pair, pair]
        call.request = Array(0..<200).map { UInt8($0) }
        var frame = RpcV1.ClientFrame()
        frame.kind = .call(call)
        return frame
    }

    @Test("Every truncation of a valid ClientFrame is rejected")
    func truncatedEncodings() {
        let bytes = Self.sampleFrame().serializedBytes()
        // ClientFrame has one top-level field, so every non-empty proper prefix ends inside it.
        for length in 1..<bytes.count {
            #expect(throws: ProtoDecodingError.self, "prefix of \(length) bytes") {
                try RpcV1.ClientFrame(serializedBytes: bytes.prefix(length))
            }
        }
    }

    @Test("The error names the message and says the bytes were malformed")
    func errorDescribesFailure() throws {
        let error = try #require(throws: ProtoDecodingError.self) {
            try RpcV1.ClientFrame(serializedBytes: [0x12, 0x05, 0x08])
        }
        #expect(error.messageName == "vpp.rpc.v1.ClientFrame")
        #expect(error.reason == "malformed")
    }

    @Test("Thousands of pseudo-random byte strings either throw or decode to a value that re-encodes stably")
    func randomInputs() throws {
        var random = SplitMix64(seed: 0x5EED_1234)
        var rejected = 0
        for _ in 0..<4_000 {
            let length = Int.random(in: 0...64, using: &random)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            rejected += try Self.decodeOrReject(RpcV1.ClientFrame.self, bytes)
            rejected += try Self.decodeOrReject(RpcV1.ServerFrame.self, bytes)
            rejected += try Self.decodeOrReject(RpcV1.Call.self, bytes)
            rejected += try Self.decodeOrReject(RpcV1.Status.self, bytes)
        }
        // Random bytes are mostly not a valid encoding; make sure the test exercised the failure path.
        #expect(rejected > 4_000)
    }

    /// 1 when the bytes were rejected, 0 when they decoded (then the value must survive re-encoding).
    private static func decodeOrReject<M: ProtoMessage>(_: M.Type, _ bytes: [UInt8]) throws -> Int {
        let message: M
        do {
            message = try M(serializedBytes: bytes)
        } catch {
            return 1
        }
        #expect(try M(serializedBytes: message.serializedBytes()) == message)
        return 0
    }

    @Test(
        "Hostile encodings are rejected",
        arguments: [
            // ClientFrame.call (field 2) claiming a 4 GiB length.
            [0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
            // ... claiming a length past 2^64 (an 11-byte varint).
            [0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            // ClientFrame.call sent as a varint instead of length-delimited.
            [0x10, 0x05],
            // ClientFrame.call sent as fixed32.
            [0x15, 0x01, 0x02, 0x03, 0x04],
            // Call.method (string, field 2) sent as a varint, inside ClientFrame.call.
            [0x12, 0x02, 0x10, 0x05],
            // Call.call_id (uint64, field 1) sent length-delimited, inside ClientFrame.call.
            [0x12, 0x03, 0x0A, 0x01, 0x00],
            // Wire type 7 does not exist.
            [0x0F],
            // Field number 0 is invalid.
            [0x00, 0x00],
            // A nested length that runs past its parent's end.
            [0x12, 0x02, 0x22, 0x10, 0x0A],
            // A tag whose varint never ends.
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        ] as [[UInt8]]
    )
    func hostileInputs(bytes: [UInt8]) {
        #expect(throws: ProtoDecodingError.self) {
            try RpcV1.ClientFrame(serializedBytes: bytes)
        }
    }

    @Test("Invalid UTF-8 in a string field decodes leniently with replacement characters")
    func invalidUTF8() throws {
        // Hello { api_key: 0xFF 0xFE, client_name: "ok" }
        let hello = try RpcV1.Hello(serializedBytes: [0x0A, 0x02, 0xFF, 0xFE, 0x12, 0x02, 0x6F, 0x6B])
        #expect(hello.apiKey == "\u{FFFD}\u{FFFD}")
        #expect(hello.clientName == "ok")
    }
}

@Suite("Strings with NUL bytes")
struct NULStringTests {
    @Test("a string with a NUL byte is refused, not cut short (protobuf-c hands strings to C as NUL-terminated)")
    func nulInTopLevelString() {
        // ClientFrame{hello{api_key: "a\0b"}}
        let bytes: [UInt8] = [0x0A, 0x05, 0x0A, 0x03, 0x61, 0x00, 0x62]
        #expect(throws: ProtoDecodingError.self) { try RpcV1.ClientFrame(serializedBytes: bytes) }
    }

    @Test("a NUL byte in a string nested inside messages and repeated fields is refused too")
    func nulInNestedString() {
        // ClientFrame{call{call_id: 1, metadata: [KeyValue{key: "k", value: "v\0"}]}}
        let keyValue: [UInt8] = [0x0A, 0x01, 0x6B, 0x12, 0x02, 0x76, 0x00]
        let call: [UInt8] = [0x08, 0x01, 0x22, UInt8(keyValue.count)] + keyValue
        let frame: [UInt8] = [0x12, UInt8(call.count)] + call
        #expect(throws: ProtoDecodingError.self) { try RpcV1.ClientFrame(serializedBytes: frame) }
    }

    @Test("NUL bytes in bytes fields are data, and decode")
    func nulInBytes() throws {
        // ClientFrame{call{call_id: 1, request: 00 00 01}}
        let call: [UInt8] = [0x08, 0x01, 0x2A, 0x03, 0x00, 0x00, 0x01]
        let frame = try RpcV1.ClientFrame(serializedBytes: [0x12, UInt8(call.count)] + call)
        guard case .call(let decoded) = frame.kind else {
            Issue.record("expected a call")
            return
        }
        #expect(decoded.request == [0, 0, 1])
    }
}
