import Testing
import VPPProto

/// Bytes written by hand from the protobuf wire format, so these tests check libprotobuf-c and the bridge against
/// the format itself rather than against their own output.
@Suite("Hand-encoded wire bytes")
struct WireInteropTests {
    /// ClientFrame { call (2): Call { call_id: 7, method: "/a.B/C", timeout_ms: 1500,
    ///   metadata: [{ key: "k", value: "v" }], request: [1, 2, 3] } }
    static let clientFrameWithCall: [UInt8] = [
        0x12, 0x1A,  // field 2, length-delimited, 26 bytes
        0x08, 0x07,  // call_id = 7
        0x12, 0x06, 0x2F, 0x61, 0x2E, 0x42, 0x2F, 0x43,  // method = "/a.B/C"
        0x18, 0xDC, 0x0B,  // timeout_ms = 1500 (varint 0xDC 0x0B)
        0x22, 0x06, 0x0A, 0x01, 0x6B, 0x12, 0x01, 0x76,  // metadata = [{ "k", "v" }]
        0x2A, 0x03, 0x01, 0x02, 0x03,  // request = 01 02 03
    ]

    @Test("A hand-encoded ClientFrame with a nested Call decodes to the expected values")
    func decodesHandEncodedCall() throws {
        let frame = try RpcV1.ClientFrame(serializedBytes: Self.clientFrameWithCall)
        guard case .call(let call)? = frame.kind else {
            Issue.record("expected .call, got \(String(describing: frame.kind))")
            return
        }
        #expect(call.callId == 7)
        #expect(call.method == "/a.B/C")
        #expect(call.timeoutMs == 1_500)
        #expect(call.metadata.count == 1)
        #expect(call.metadata.first?.key == "k")
        #expect(call.metadata.first?.value == "v")
        #expect(call.request == [1, 2, 3])
    }

    @Test("Encoding the same ClientFrame produces exactly the hand-written bytes")
    func encodesToHandEncodedBytes() throws {
        var pair = RpcV1.KeyValue()
        pair.key = "k"
        pair.value = "v"
        var call = RpcV1.Call()
        call.callId = 7
        call.method = "/a.B/C"
        call.timeoutMs = 1_500
        call.metadata = [pair]
        call.request = [1, 2, 3]
        var frame = RpcV1.ClientFrame()
        frame.kind = .call(call)
        #expect(frame.serializedBytes() == Self.clientFrameWithCall)
    }

    @Test("Fields in any order, unknown fields and repeated occurrences decode as the format says")
    func fieldOrderAndUnknownFields() throws {
        let bytes: [UInt8] = [
            0x12, 0x01, 0x78,  // value = "x"
            0xA0, 0x06, 0x01,  // unknown field 100, varint: skipped
            0x0A, 0x01, 0x61,  // key = "a"
            0x0A, 0x01, 0x62,  // key = "b": the last occurrence wins
        ]
        let pair = try RpcV1.KeyValue(serializedBytes: bytes)
        #expect(pair.key == "b")
        #expect(pair.value == "x")
    }

    @Test("A ServerFrame Reply with a status and an unknown code decodes field by field")
    func decodesHandEncodedReply() throws {
        // ServerFrame { reply (2): Reply { call_id: 1, status (3): Status { code: 99, message: "no" } } }
        let bytes: [UInt8] = [0x12, 0x0A, 0x08, 0x01, 0x1A, 0x06, 0x08, 0x63, 0x12, 0x02, 0x6E, 0x6F]
        let frame = try RpcV1.ServerFrame(serializedBytes: bytes)
        guard case .reply(let reply)? = frame.kind else {
            Issue.record("expected .reply")
            return
        }
        #expect(reply.callId == 1)
        #expect(reply.message == nil)
        #expect(reply.status?.code == .unrecognized(99))
        #expect(reply.status?.message == "no")
        #expect(frame.serializedBytes() == bytes)
    }

    @Test("Message names are the full protobuf names")
    func messageNames() {
        #expect(RpcV1.ClientFrame.protoMessageName == "vpp.rpc.v1.ClientFrame")
        #expect(RpcV1.GoAway.protoMessageName == "vpp.rpc.v1.GoAway")
    }
}
