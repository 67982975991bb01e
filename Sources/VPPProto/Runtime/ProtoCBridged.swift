internal import CProtobufC

/// The bridge between a generated message and its protobuf-c struct; internal, so C types stay in this module.
///
/// Generated types implement the per-message parts (field copies, the typed protobuf-c functions); this file holds
/// the parts that are the same for every message.
protocol ProtoCBridged: ProtoMessage {
    /// The protoc-c struct, e.g. `Vpp__Rpc__V1__ClientFrame`.
    associatedtype CMessage

    /// Copies every field out of a C struct; keeps no pointer into it.
    init(_c c: UnsafePointer<CMessage>)
    /// Writes every field into a C struct already set up by `_cInit`, allocating in `arena`.
    func _fill(_ c: inout CMessage, _ arena: ProtoArena)

    /// `<c>__init`: sets the descriptor and the defaults.
    static func _cInit(_ c: UnsafeMutablePointer<CMessage>)
    /// `<c>__unpack(NULL, len, data)`.
    static func _cUnpack(_ length: Int, _ data: UnsafePointer<UInt8>) -> UnsafeMutablePointer<CMessage>?
    /// `<c>__free_unpacked(c, NULL)`.
    static func _cFreeUnpacked(_ c: UnsafeMutablePointer<CMessage>)
    /// `<c>__get_packed_size(c)`.
    static func _cPackedSize(_ c: UnsafePointer<CMessage>) -> Int
    /// `<c>__pack(c, out)`.
    static func _cPack(_ c: UnsafePointer<CMessage>, _ out: UnsafeMutablePointer<UInt8>) -> Int
}

extension ProtoCBridged {
    /// The message as a C struct allocated in `arena`, for a message field or the top of an encode.
    func _cMessage(_ arena: ProtoArena) -> UnsafeMutablePointer<CMessage> {
        let c = arena.allocate(CMessage.self)
        Self._cInit(c)
        self._fill(&c.pointee, arena)
        return c
    }

    // protoc-c writes typed pack/unpack functions only for top-level messages; nested messages use these generic
    // ones, with the descriptor that `<c>__init` stores in the struct's `base`.

    /// The message's protobuf-c descriptor, as `<c>__init` stores it in the struct's `base`.
    /// Read on every decode, so the probe struct lives on the stack rather than the heap.
    static var _cDescriptor: UnsafePointer<ProtobufCMessageDescriptor> {
        withUnsafeTemporaryAllocation(of: CMessage.self, capacity: 1) { probe in
            _cInit(probe.baseAddress!)
            return UnsafePointer<ProtobufCMessage>(OpaquePointer(probe.baseAddress!)).pointee.descriptor
        }
    }

    static func _cUnpack(_ length: Int, _ data: UnsafePointer<UInt8>) -> UnsafeMutablePointer<CMessage>? {
        guard let message = protobuf_c_message_unpack(_cDescriptor, nil, length, data) else { return nil }
        return UnsafeMutablePointer<CMessage>(OpaquePointer(message))
    }

    static func _cFreeUnpacked(_ c: UnsafeMutablePointer<CMessage>) {
        protobuf_c_message_free_unpacked(UnsafeMutablePointer<ProtobufCMessage>(OpaquePointer(c)), nil)
    }

    static func _cPackedSize(_ c: UnsafePointer<CMessage>) -> Int {
        protobuf_c_message_get_packed_size(UnsafePointer<ProtobufCMessage>(OpaquePointer(c)))
    }

    static func _cPack(_ c: UnsafePointer<CMessage>, _ out: UnsafeMutablePointer<UInt8>) -> Int {
        protobuf_c_message_pack(UnsafePointer<ProtobufCMessage>(OpaquePointer(c)), out)
    }
}

/// Decodes with protobuf-c, copies the result into Swift and frees the C message before returning.
func _protoDecode<M: ProtoCBridged>(_: M.Type, _ bytes: UnsafeRawBufferPointer) throws(ProtoDecodingError) -> M {
    guard _protoStringsAreNULFree(M._cDescriptor, bytes) else {
        throw ProtoDecodingError(messageName: M.protoMessageName, reason: "a string field contains a NUL byte")
    }
    // protobuf-c wants a non-NULL pointer even for an empty input.
    var empty: UInt8 = 0
    let c: UnsafeMutablePointer<M.CMessage>? = withUnsafeMutablePointer(to: &empty) { emptyPointer in
        let data = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(emptyPointer)
        return M._cUnpack(bytes.count, data)
    }
    guard let c else {
        throw ProtoDecodingError(messageName: M.protoMessageName, reason: "malformed")
    }
    defer { M._cFreeUnpacked(c) }
    return M(_c: c)
}

/// Builds the C struct once, reports its packed size, and packs on demand.
func _protoWithSerialized<M: ProtoCBridged, R>(
    _ message: M,
    _ body: (_ size: Int, _ pack: (UnsafeMutableRawPointer) -> Void) throws -> R
) rethrows -> R {
    try ProtoArena.with { arena in
        let c = message._cMessage(arena)
        let size = M._cPackedSize(c)
        return try body(size) { out in
            let written = M._cPack(c, out.assumingMemoryBound(to: UInt8.self))
            precondition(
                written == size,
                "protobuf-c packed \(written) bytes of \(M.protoMessageName), expected \(size)"
            )
        }
    }
}

// MARK: Field conversions used by the generated code

/// A C string as a Swift string; invalid UTF-8 is repaired with U+FFFD instead of failing.
func _protoString(_ c: UnsafePointer<CChar>?) -> String {
    guard let c else { return "" }
    return String(cString: c)
}

func _protoBytes(_ c: ProtobufCBinaryData) -> [UInt8] {
    guard c.len > 0, let data = c.data else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: c.len))
}

/// A C array (`n_x`, `x`) as a Swift array.
func _protoArray<Element, Value>(
    _ count: Int,
    _ base: UnsafeMutablePointer<Element>?,
    _ transform: (Element) -> Value
) -> [Value] {
    guard count > 0, let base else { return [] }
    return UnsafeBufferPointer(start: base, count: count).map(transform)
}
