import Testing
import VPPProto

@Suite("Envelope messages round-trip through libprotobuf-c")
struct EnvelopeRoundTripTests {
    private func roundTrip<M: ProtoMessage>(_ message: M) throws -> M {
        try M(serializedBytes: message.serializedBytes())
    }

    private static func call() -> RpcV1.Call {
        var call = RpcV1.Call()
        call.callId = 42
        call.method = "/vpp.v1.SystemService/Ping"
        call.timeoutMs = 1_500
        call.metadata = [
            keyValue("idempotency-key", "3f1c"),
            keyValue("request-id", "r-1"),
            keyValue("", ""),
        ]
        call.request = [0, 1, 2, 255]
        return call
    }

    private static func keyValue(_ key: String, _ value: String) -> RpcV1.KeyValue {
        var pair = RpcV1.KeyValue()
        pair.key = key
        pair.value = value
        return pair
    }

    @Test("Each ClientFrame kind decodes to the value that was encoded")
    func clientFrameKinds() throws {
        var hello = RpcV1.Hello()
        hello.apiKey = "vpp_op_0123456789"
        hello.clientName = "vppctl/1.0 ✓"
        hello.protocolVersion = 1
        var cancel = RpcV1.Cancel()
        cancel.callId = .max
        var ping = RpcV1.Ping()
        ping.nonce = 0xDEAD_BEEF
        let kinds: [RpcV1.ClientFrame.Kind] = [.hello(hello), .call(Self.call()), .cancel(cancel), .ping(ping)]
        for kind in kinds {
            var frame = RpcV1.ClientFrame()
            frame.kind = kind
            #expect(try roundTrip(frame) == frame)
        }
    }

    @Test("A oneof case holding an all-default message is still present after decoding")
    func oneofWithDefaultMessage() throws {
        var frame = RpcV1.ClientFrame()
        frame.kind = .ping(RpcV1.Ping())
        let bytes = frame.serializedBytes()
        #expect(bytes == [0x22, 0x00])
        #expect(try RpcV1.ClientFrame(serializedBytes: bytes).kind == .ping(RpcV1.Ping()))
    }

    @Test("Each ServerFrame kind, with nested repeated details and metadata, round-trips")
    func serverFrameKinds() throws {
        var welcome = RpcV1.Welcome()
        welcome.principalKind = "tenant"
        welcome.tenantId = "t-1"
        welcome.keyId = "k-9"
        welcome.serverVersion = "1.2.3"
        welcome.protocolVersion = 1
        welcome.maxFrameBytes = 4 << 20
        welcome.maxCallsInFlight = 64

        var detail = RpcV1.ErrorDetail()
        detail.reason = "RULE_R14"
        detail.field = "tokens[0].id"
        detail.metadata = [Self.keyValue("limit", "10"), Self.keyValue("count", "11")]
        var status = RpcV1.Status()
        status.code = .failedPrecondition
        status.message = "Too many tokens; revoke one first."
        status.details = [detail, RpcV1.ErrorDetail()]

        var payload = RpcV1.Payload()
        payload.data = [9, 8, 7]
        var reply = RpcV1.Reply()
        reply.callId = 7
        reply.message = payload
        reply.status = status

        var pong = RpcV1.Pong()
        pong.nonce = 5
        var goAway = RpcV1.GoAway()
        goAway.status = status
        goAway.lastCallId = 99

        let kinds: [RpcV1.ServerFrame.Kind] = [.welcome(welcome), .reply(reply), .pong(pong), .goAway(goAway)]
        for kind in kinds {
            var frame = RpcV1.ServerFrame()
            frame.kind = kind
            let decoded = try roundTrip(frame)
            #expect(decoded == frame)
        }
    }

    @Test("A Reply without a status decodes with status nil, and an empty payload stays present")
    func absentAndEmptySubmessages() throws {
        var reply = RpcV1.Reply()
        reply.callId = 3
        reply.message = RpcV1.Payload()
        let decoded = try roundTrip(reply)
        #expect(decoded.status == nil)
        #expect(decoded.message == RpcV1.Payload())
    }

    @Test("A Call carrying a 1 MiB request payload round-trips byte for byte")
    func largePayload() throws {
        var call = Self.call()
        call.request = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var frame = RpcV1.ClientFrame()
        frame.kind = .call(call)
        let bytes = frame.serializedBytes()
        #expect(bytes.count > 1 << 20)
        #expect(try RpcV1.ClientFrame(serializedBytes: bytes) == frame)
    }

    @Test("Empty messages encode to zero bytes and decode back from zero bytes")
    func emptyMessages() throws {
        #expect(RpcV1.ClientFrame().serializedBytes() == [])
        #expect(RpcV1.Ping().serializedBytes() == [])
        #expect(RpcV1.Call().serializedBytes() == [])
        #expect(try RpcV1.ClientFrame(serializedBytes: [UInt8]()) == RpcV1.ClientFrame())
        #expect(try RpcV1.Status(serializedBytes: [UInt8]()) == RpcV1.Status())
    }

    @Test("withSerialized reports the exact size and packs exactly that many bytes into caller memory")
    func withSerializedPacksInPlace() throws {
        var frame = RpcV1.ClientFrame()
        frame.kind = .call(Self.call())
        let expected = frame.serializedBytes()
        let packed: [UInt8] = frame.withSerialized { size, pack in
            #expect(size == expected.count)
            // One sentinel byte past the end: pack must not touch it.
            var buffer = [UInt8](repeating: 0xAA, count: size + 1)
            buffer.withUnsafeMutableBytes { pack($0.baseAddress!) }
            #expect(buffer[size] == 0xAA)
            return Array(buffer.prefix(size))
        }
        #expect(packed == expected)
    }

    @Test("withSerialized lets the caller refuse an oversize message without packing it")
    func withSerializedCanRefuse() {
        var call = Self.call()
        call.request = [UInt8](repeating: 1, count: 10_000)
        let limit = 1_024
        let accepted = call.withSerialized { size, _ in size <= limit }
        #expect(!accepted)
    }

    @Test("Decoding accepts any byte collection, contiguous or not")
    func decodesFromCollections() throws {
        var ping = RpcV1.Ping()
        ping.nonce = 300
        let bytes = ping.serializedBytes()
        #expect(try RpcV1.Ping(serializedBytes: bytes[...]) == ping)
        #expect(try RpcV1.Ping(serializedBytes: bytes.reversed().reversed()) == ping)
        #expect(try bytes.withUnsafeBytes { try RpcV1.Ping(serializedBytes: $0) } == ping)
    }

    @Test("Strings with non-ASCII text and empty strings in repeated fields round-trip")
    func stringsRoundTrip() throws {
        var detail = RpcV1.ErrorDetail()
        detail.reason = "ÜBER_LIMIT 😀"
        detail.metadata = [Self.keyValue("", "x"), Self.keyValue("y", "")]
        #expect(try roundTrip(detail) == detail)
    }
}
