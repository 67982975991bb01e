import NIOCore
import VPPProto
import VPPWire

/// The bytes of the attacks `vpp-load abuse` sends (issue 16), built by hand in protobuf's wire format: a client
/// library would refuse to build most of them, and the elements are empty on purpose (two bytes each on the wire,
/// one allocated message each in a decoder that does not count first).
enum AttackFrames {
    /// A length-prefixed frame around `body`.
    static func frame(_ body: [UInt8]) -> [UInt8] {
        prefix(length: body.count) + body
    }

    /// A frame's 4-byte big-endian length prefix.
    static func prefix(length: Int) -> [UInt8] {
        let length = UInt32(length)
        return [UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)]
    }

    /// What an attacker of `attack` sends each time, for frames of up to `maxFrameBytes` (empty for the attacks that
    /// send no frame of their own). Built once per run: building 4 MiB per attempt took more CPU than the server spent
    /// refusing it, and on a small machine the tool would measure itself. The call id is always 1: a call id may be
    /// used again once its call ended.
    static func bytes(of attack: Attack, maxFrameBytes: Int) -> [UInt8] {
        switch attack {
        case .none, .closeStorm:
            return []
        case .metadata, .metadataNoKey:
            return call(
                callID: 1,
                method: "/vpp.v1.SystemService/Ping",
                metadataEntries: elementsFitting(frameBytes: maxFrameBytes)
            )
        case .elements:
            let users = emptyElements(count: elementsFitting(frameBytes: maxFrameBytes, overhead: 128))
            return call(callID: 1, method: "/vpp.v1.DirectoryService/UpsertUsers", request: users)
        case .partialFrame, .partialFrameKey:
            // A frame one byte short of its announced length.
            return prefix(length: maxFrameBytes) + [UInt8](repeating: 0x41, count: maxFrameBytes - 1)
        }
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
