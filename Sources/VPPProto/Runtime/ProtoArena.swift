internal import CProtobufC

/// Owns every C allocation made while a message is converted to its protobuf-c struct, and frees them together.
///
/// Encoding builds a tree of C structs (strings, byte arrays, nested messages, pointer arrays) that libprotobuf-c
/// only reads. Rather than track ownership per field, everything is allocated here and released when
/// `ProtoArena.with` returns, so no C pointer outlives the encode. A class (not a `~Copyable` struct) keeps the
/// generated code free of `inout` plumbing; it never escapes `with`.
final class ProtoArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    private init() {}

    /// Runs `body` with a fresh arena and frees everything it allocated afterwards.
    static func with<R>(_ body: (ProtoArena) throws -> R) rethrows -> R {
        let arena = ProtoArena()
        defer { arena.freeAll() }
        return try body(arena)
    }

    private func freeAll() {
        for pointer in allocations {
            pointer.deallocate()
        }
        allocations.removeAll()
    }

    /// Uninitialized memory for `count` values of `T` (trivial C types only).
    func allocate<T>(_: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: MemoryLayout<T>.stride * Swift.max(count, 1),
            alignment: MemoryLayout<T>.alignment
        )
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: Swift.max(count, 1))
    }

    /// A NUL-terminated copy of `string`'s UTF-8.
    ///
    /// protobuf-c keeps strings as C strings, so a string with an embedded NUL is cut at the NUL on the wire.
    func cString(_ string: String) -> UnsafeMutablePointer<CChar> {
        var string = string
        return string.withUTF8 { utf8 in
            let pointer = allocate(CChar.self, count: utf8.count + 1)
            utf8.withMemoryRebound(to: CChar.self) { chars in
                if let base = chars.baseAddress {
                    pointer.initialize(from: base, count: chars.count)
                }
            }
            pointer[utf8.count] = 0
            return pointer
        }
    }

    /// A copy of `bytes` as protobuf-c's `bytes` value (`{0, NULL}` when empty).
    func binaryData(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        guard !bytes.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        let pointer = allocate(UInt8.self, count: bytes.count)
        bytes.withUnsafeBufferPointer { pointer.initialize(from: $0.baseAddress!, count: $0.count) }
        return ProtobufCBinaryData(len: bytes.count, data: pointer)
    }

    /// A C array of `values` converted by `transform`, or `nil` when empty (protobuf-c's `n_x = 0, x = NULL`).
    func array<Value, Element>(
        _ values: [Value],
        of _: Element.Type,
        _ transform: (Value) -> Element
    ) -> UnsafeMutablePointer<Element>? {
        guard !values.isEmpty else { return nil }
        let pointer = allocate(Element.self, count: values.count)
        for (index, value) in values.enumerated() {
            (pointer + index).initialize(to: transform(value))
        }
        return pointer
    }
}
