/// Bytes that are not a valid encoding of the expected message.
public struct ProtoDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The full protobuf name of the message that was being decoded.
    public var messageName: String
    /// Why decoding failed; `"malformed"` when libprotobuf-c rejected the bytes.
    public var reason: String

    public init(messageName: String, reason: String) {
        self.messageName = messageName
        self.reason = reason
    }

    public var description: String {
        "cannot decode \(messageName): \(reason)"
    }
}
