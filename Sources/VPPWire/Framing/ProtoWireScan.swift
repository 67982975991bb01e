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

    /// Thrown inside a scan to end it early.
    private struct Stop: Error {}

    /// The most times any one field occurs at the top level of the message: a repeated field's element count (a
    /// packed repeated scalar counts as one occurrence, and costs no allocation per element).
    ///
    /// The scan stops as soon as a count passes `limit` and returns that count (`limit + 1`): a caller that refuses
    /// what is over its limit reads at most that many elements, not the two million a 4 MiB frame can hold. Bytes
    /// after that point are not checked.
    public static func largestRepetition(_ bytes: [UInt8], stoppingAbove limit: Int = .max) throws -> Int {
        try bytes.withUnsafeBytes { raw in
            // Field numbers below 64 (all of these protos' fields) count in a flat array; others in a dictionary.
            var low = [Int](repeating: 0, count: 64)
            var high: [UInt64: Int] = [:]
            var largest = 0
            do {
                try Self.forEachField(raw) { field, _ in
                    let count: Int
                    if field < 64 {
                        low[Int(field)] += 1
                        count = low[Int(field)]
                    } else {
                        count = (high[field] ?? 0) + 1
                        high[field] = count
                    }
                    if count > largest {
                        largest = count
                        if largest > limit { throw Stop() }
                    }
                }
            } catch is Stop {}
            return largest
        }
    }

    /// How often field `inner` occurs in the first length-delimited field `outer` of the message (e.g. the metadata
    /// entries of the Call in a ClientFrame); nil when there is no such field. Stops counting once past `limit`.
    public static func count(
        of inner: UInt64,
        inside outer: UInt64,
        of bytes: UnsafeRawBufferPointer,
        stoppingAbove limit: Int = .max
    ) throws -> Int? {
        var found: Range<Int>?
        do {
            try Self.forEachField(bytes) { field, payload in
                if field == outer {
                    found = payload
                    throw Stop()
                }
            }
        } catch is Stop {}
        guard let payload = found else { return nil }
        var count = 0
        do {
            try Self.forEachField(UnsafeRawBufferPointer(rebasing: bytes[payload])) { field, _ in
                if field == inner {
                    count += 1
                    if count > limit { throw Stop() }
                }
            }
        } catch is Stop {}
        return count
    }
}
