import NIOCore
import VPPProto
import VPPWire

/// The bytes of the attacks `vpp-load abuse` sends (issue 16), built by hand in protobuf's wire format: a client
/// library would refuse to build most of them, and the elements are empty on purpose (two bytes each on the wire,
/// one allocated message each in a decoder that does not count first).
enum AttackFrames {
    /// A length-prefixed frame around `body`.
    static func frame(_ body: [UInt8]) -> [UInt8] {
        let length = UInt32(body.count)
        return [UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)] + body
    }

    /// The Hello frame a real client sends first.
    static func hello(apiKey: String) -> [UInt8] {
        var hello = RpcV1.Hello()
        hello.apiKey = apiKey
        hello.protocolVersion = 1
        hello.clientName = "vpp-load-abuse/1"
        var frame = RpcV1.ClientFrame()
        frame.kind = .hello(hello)
        var buffer = ByteBuffer()
        // A Hello is far below any frame limit.
        _ = try? buffer.writeFrame(frame)
        return Array(buffer.readableBytesView)
    }

    /// A ClientFrame{call: Call{call_id, method, metadata × `metadataEntries` (empty), request}}.
    static func call(callID: UInt64, method: String, metadataEntries: Int = 0, request: [UInt8] = []) -> [UInt8] {
        var call: [UInt8] = []
        call.reserveCapacity(32 + method.utf8.count + 2 * metadataEntries + request.count)
        call += tag(1, .varint) + varint(callID)
        call += lengthDelimited(2, Array(method.utf8))
        for _ in 0..<metadataEntries { call += [tag(4, .lengthDelimited)[0], 0] }
        if !request.isEmpty { call += lengthDelimited(5, request) }
        return frame(lengthDelimited(2, call))
    }

    /// A request message whose field 1 repeats `count` empty messages (UpsertUsersRequest.users, say).
    static func emptyElements(count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(2 * count)
        for _ in 0..<count { bytes += [tag(1, .lengthDelimited)[0], 0] }
        return bytes
    }

    /// How many empty two-byte elements fit in a Call frame of at most `frameBytes` (with `overhead` bytes for the
    /// rest of it): the most a frame within the server's limit can carry.
    static func elementsFitting(frameBytes: Int, overhead: Int = 64) -> Int {
        max(0, (frameBytes - overhead) / 2)
    }

    enum WireType: UInt8 {
        case varint = 0
        case lengthDelimited = 2
    }

    static func tag(_ field: UInt32, _ type: WireType) -> [UInt8] {
        varint(UInt64(field << 3 | UInt32(type.rawValue)))
    }

    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var bytes: [UInt8] = []
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
        return bytes
    }

    static func lengthDelimited(_ field: UInt32, _ body: [UInt8]) -> [UInt8] {
        tag(field, .lengthDelimited) + varint(UInt64(body.count)) + body
    }
}
