internal import CProtobufC

/// protobuf-c hands strings to C as NUL-terminated `char *`: a string with a NUL byte inside would reach Swift cut
/// short, silently. Before unpacking, this walks the encoded bytes with the message's descriptor and reports whether
/// every string field, at every depth, is free of NUL bytes, so such input is refused instead of truncated.
///
/// Anything it cannot parse it leaves to protobuf-c, which refuses malformed input itself.
func _protoStringsAreNULFree(
    _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>,
    _ bytes: UnsafeRawBufferPointer,
    depth: Int = 0
) -> Bool {
    guard depth < 64 else { return true }  // no recursive types in Protos/; protobuf-c bounds the rest
    var index = 0
    func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.count, shift < 64 {
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }
    while index < bytes.count {
        guard let tag = varint() else { return true }
        switch tag & 7 {
        case 0:
            guard varint() != nil else { return true }
        case 1:
            index += 8
        case 5:
            index += 4
        case 2:
            guard let length = varint(), length <= UInt64(bytes.count - index) else { return true }
            let start = index
            index += Int(length)
            guard tag >> 3 <= UInt64(UInt32.max),
                let field = protobuf_c_message_descriptor_get_field(descriptor, UInt32(tag >> 3))
            else { continue }
            let value = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
            if field.pointee.type == PROTOBUF_C_TYPE_STRING {
                if value.contains(0) { return false }
            } else if field.pointee.type == PROTOBUF_C_TYPE_MESSAGE, let nested = field.pointee.descriptor {
                let nestedDescriptor = nested.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
                if !_protoStringsAreNULFree(nestedDescriptor, value, depth: depth + 1) { return false }
            }
        default:
            return true
        }
    }
    return true
}
