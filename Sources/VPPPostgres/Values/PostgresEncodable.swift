public import Foundation

/// A Swift value that can be bound as a query parameter, in PostgreSQL's text format.
///
/// Parameters are always sent beside the SQL text (`$1`, `$2`, …), never spliced into it.
public protocol PostgresEncodable: Sendable {
    /// The parameter type sent to the server. `.unknownLiteral` lets the server infer it.
    static var postgresType: PostgresDataType { get }
    /// The value in the text input syntax of `postgresType`.
    var postgresText: String { get }
}

/// One bound parameter: its type and its text (`nil` is SQL NULL).
public struct PostgresBind: Sendable, Hashable {
    public var type: PostgresDataType
    public var text: String?

    public init(type: PostgresDataType, text: String?) {
        self.type = type
        self.text = text
    }

    public init<Value: PostgresEncodable>(_ value: Value?) {
        self.init(type: Value.postgresType, text: value?.postgresText)
    }

    /// Binds an existential; `nil` binds a NULL of unspecified type.
    public init(any value: (any PostgresEncodable)?) {
        if let value {
            self.init(type: Swift.type(of: value).postgresType, text: value.postgresText)
        } else {
            self.init(type: .unknownLiteral, text: nil)
        }
    }
}

extension String: PostgresEncodable {
    /// Strings are sent like an untyped quoted literal, so they fill text, varchar, uuid, jsonb and
    /// enum columns alike. (PostgreSQL text cannot hold NUL; such a string fails on the server.)
    public static var postgresType: PostgresDataType { .unknownLiteral }
    public var postgresText: String { self }
}

extension Int: PostgresEncodable {
    public static var postgresType: PostgresDataType { .int8 }
    public var postgresText: String { String(self) }
}

extension Int64: PostgresEncodable {
    public static var postgresType: PostgresDataType { .int8 }
    public var postgresText: String { String(self) }
}

extension Int32: PostgresEncodable {
    public static var postgresType: PostgresDataType { .int4 }
    public var postgresText: String { String(self) }
}

extension Bool: PostgresEncodable {
    public static var postgresType: PostgresDataType { .bool }
    public var postgresText: String { self ? "t" : "f" }
}

extension Double: PostgresEncodable {
    public static var postgresType: PostgresDataType { .float8 }
    public var postgresText: String {
        if isNaN { return "NaN" }
        if isInfinite { return self < 0 ? "-Infinity" : "Infinity" }
        return "\(self)"
    }
}

extension UUID: PostgresEncodable {
    public static var postgresType: PostgresDataType { .uuid }
    public var postgresText: String { lowercasedText }
}

extension Date: PostgresEncodable {
    /// A `timestamptz` in UTC with microsecond precision (PostgreSQL's resolution).
    public static var postgresType: PostgresDataType { .timestamptz }
    public var postgresText: String { PostgresTimestamp.format(self) }
}

/// A type whose arrays are bound and decoded as one-dimensional PostgreSQL arrays.
///
/// `UInt8` is one too, with its own array form: `[UInt8]` is `bytea`, not an array of bytes.
public protocol PostgresArrayElement: Sendable {
    /// The array type (`text[]` for `String`).
    static var postgresArrayType: PostgresDataType { get }
    /// The text of a whole array. The default writes an array literal.
    static func postgresArrayText(_ elements: [Self]) -> String
    /// Decodes a whole array. The default parses an array literal.
    static func decodePostgresArray(
        text: Substring,
        type: PostgresDataType
    ) throws(PostgresDecodingError.Reason) -> [Self]
}

extension PostgresArrayElement where Self: PostgresEncodable {
    public static func postgresArrayText(_ elements: [Self]) -> String {
        PostgresArrayLiteral.format(elements.map(\.postgresText))
    }
}

extension PostgresArrayElement where Self: PostgresDecodable {
    public static func decodePostgresArray(
        text: Substring,
        type: PostgresDataType
    ) throws(PostgresDecodingError.Reason) -> [Self] {
        guard let elementType = type.arrayElementType else { throw .typeMismatch }
        var elements: [Self] = []
        for element in try PostgresArrayLiteral.parse(text) {
            if let element {
                elements.append(try Self(postgresText: element[...], type: elementType))
            } else {
                elements.append(try Self.postgresNull())
            }
        }
        return elements
    }
}

extension Array: PostgresEncodable where Element: PostgresArrayElement {
    public static var postgresType: PostgresDataType { Element.postgresArrayType }
    public var postgresText: String { Element.postgresArrayText(self) }
}

extension String: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .textArray }
}
extension Int: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .int8Array }
}
extension Int64: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .int8Array }
}
extension Int32: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .int4Array }
}
extension Bool: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .boolArray }
}
extension Double: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .float8Array }
}
extension UUID: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .uuidArray }
}
extension Date: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .timestamptzArray }
}

/// Arrays with NULL elements: `[String?]` is a `text[]` that may hold NULL.
extension Optional: PostgresArrayElement where Wrapped: PostgresArrayElement & PostgresEncodable & PostgresDecodable {
    public static var postgresArrayType: PostgresDataType { Wrapped.postgresArrayType }

    public static func postgresArrayText(_ elements: [Wrapped?]) -> String {
        PostgresArrayLiteral.format(elements.map { $0?.postgresText })
    }
}

extension UInt8: PostgresArrayElement {
    /// `[UInt8]` is `bytea`, written in hex form (`\x0a1b`).
    public static var postgresArrayType: PostgresDataType { .bytea }

    public static func postgresArrayText(_ elements: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(2 + elements.count * 2)
        text.append(UInt8(ascii: "\\"))
        text.append(UInt8(ascii: "x"))
        for byte in elements {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    public static func decodePostgresArray(
        text: Substring,
        type: PostgresDataType
    ) throws(PostgresDecodingError.Reason) -> [UInt8] {
        guard type == .bytea else { throw .typeMismatch }
        let utf8 = Array(text.utf8)
        // The server writes hex (bytea_output = hex, the default since 9.0).
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else {
            throw .invalidText
        }
        func nibble(_ c: UInt8) throws(PostgresDecodingError.Reason) -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: throw .invalidText
            }
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            bytes.append(try nibble(utf8[index]) << 4 | nibble(utf8[index + 1]))
            index += 2
        }
        return bytes
    }
}
