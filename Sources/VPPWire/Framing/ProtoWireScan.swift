/// Reads protobuf's wire format just far enough to count fields, without decoding or allocating (issue 16): a peer
/// can pack two million empty elements of a repeated field into 4 MiB, and decoding them would allocate hundreds of
/// megabytes and hold an event loop for seconds. Callers refuse what is over a documented limit before decoding.
public enum ProtoWireScan {
    public struct Malformed: Error, Equatable, Sendable {
        public var offset: Int
    }

    /// Calls `visit(field number, payload range)` for every top-level field of the message in `bytes` (the range is
    /// the payload of length-delimited fields, empty for the others). Throws on bytes that are not wire format.
    public static func forEachField(
        _ bytes: UnsafeRawBufferPointer,
        _ visit: (_ field: UInt64, _ payload: Range<Int>) throws -> Void
    ) throws {
        var offset = 0
        func varint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard offset < bytes.count, shift < 64 else { throw Malformed(offset: offset) }
                let byte = bytes[offset]
                offset += 1
                value |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
        }
        while offset < bytes.count {
            let key = try varint()
            let field = key >> 3
            switch key & 7 {
            case 0:
                _ = try varint()
                try visit(field, offset..<offset)
            case 1:
                guard bytes.count - offset >= 8 else { throw Malformed(offset: offset) }
                offset += 8
                try visit(field, offset..<offset)
            case 2:
                let length = try varint()
                guard length <= UInt64(bytes.count - offset) else { throw Malformed(offset: offset) }
                let start = offset
                offset += Int(length)
                try visit(field, start..<offset)
            case 5:
                guard bytes.count - offset >= 4 else { throw Malformed(offset: offset) }
                offset += 4
                try visit(field, offset..<offset)
            default:
                // Groups (3, 4) are not used by these protos; 6 and 7 do not exist.
                throw Malformed(offset: offset)
            }
        }
    }

    /// The most times any one field occurs at the top level of the message: a repeated field's element count (a
    /// packed repeated scalar counts as one occurrence, and costs no allocation per element).
    public static func largestRepetition(_ bytes: [UInt8]) throws -> Int {
        try bytes.withUnsafeBytes { raw in
            var counts: [UInt64: Int] = [:]
            var largest = 0
            try Self.forEachField(raw) { field, _ in
                let count = (counts[field] ?? 0) + 1
                counts[field] = count
                largest = max(largest, count)
            }
            return largest
        }
    }

    /// How often field `inner` occurs in the first length-delimited field `outer` of the message (e.g. the metadata
    /// entries of the Call in a ClientFrame); nil when there is no such field.
    public static func count(of inner: UInt64, inside outer: UInt64, of bytes: UnsafeRawBufferPointer) throws -> Int? {
        var found: Range<Int>?
        try Self.forEachField(bytes) { field, payload in
            if found == nil, field == outer { found = payload }
        }
        guard let payload = found else { return nil }
        var count = 0
        try Self.forEachField(UnsafeRawBufferPointer(rebasing: bytes[payload])) { field, _ in
            if field == inner { count += 1 }
        }
        return count
    }
}
