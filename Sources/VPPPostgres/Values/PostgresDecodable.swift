public import Foundation

/// A Swift value that can be read from a result column in PostgreSQL's text format.
public protocol PostgresDecodable: Sendable {
    /// Decodes a non-NULL value of a column of type `type`; throws `.typeMismatch` for a column
    /// type it does not accept and `.invalidText` for text it cannot parse.
    init(postgresText: Substring, type: PostgresDataType) throws(PostgresDecodingError.Reason)
    /// The value for SQL NULL: `Optional` gives `nil`, everything else throws `.unexpectedNull`.
    static func postgresNull() throws(PostgresDecodingError.Reason) -> Self
}

extension PostgresDecodable {
    public static func postgresNull() throws(PostgresDecodingError.Reason) -> Self { throw .unexpectedNull }
}

/// Why a column could not be decoded. Holds no column value (values may be secrets).
public struct PostgresDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: Error, Sendable, Hashable {
        /// The column is NULL and the requested type is not optional.
        case unexpectedNull
        /// The column's PostgreSQL type does not decode into the requested Swift type.
        case typeMismatch
        /// The text could not be parsed (out of range, malformed, an array where a scalar was expected, …).
        case invalidText
        /// No column has this name or index.
        case noSuchColumn
    }

    public var reason: Reason
    public var column: String
    public var columnIndex: Int
    public var swiftType: String
    public var postgresType: PostgresDataType

    public var description: String {
        let what =
            switch reason {
            case .unexpectedNull: "is NULL but \(swiftType) is not optional"
            case .typeMismatch: "has type \(postgresType), which does not decode as \(swiftType)"
            case .invalidText: "could not be parsed as \(swiftType)"
            case .noSuchColumn: "does not exist"
            }
        return "column \(columnIndex) \"\(column)\" \(what)"
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init(postgresText: Substring, type: PostgresDataType) throws(PostgresDecodingError.Reason) {
        self = .some(try Wrapped(postgresText: postgresText, type: type))
    }
    public static func postgresNull() throws(PostgresDecodingError.Reason) -> Self { nil }
}

extension String: PostgresDecodable {
    /// Any non-array column reads as its text representation (text, varchar, uuid, json, enums,
    /// numbers, …); arrays and bytea are refused so that a wrong column is noticed.
    public init(postgresText: Substring, type: PostgresDataType) throws(PostgresDecodingError.Reason) {
        guard type.arrayElementType == nil, type != .bytea else { throw .typeMismatch }
        self = String(postgresText)
    }
}

extension Int64: PostgresDecodable {
    public init(postgresText: Substring, type: PostgresDataType) throws(PostgresDecodingError.Reason) {
        guard type == .int8 || type == .int4 || type == .int2 || type == .oidType else { throw .typeMismatch }
        guard let value = Int64(postgresText) else { throw .invalidText }
        self = value
    }
}

extension Int: PostgresDecodable {
    public init(postgresText: Substring, type: PostgresDataType) throws(PostgresDecodingError.Reason) {
        guard let value = Int(exactly: try Int64(postgresText: postgresText, type: type)) else { throw .invalidText }
        self = value
    }
}

extension Int32: PostgresDecodable {
    public init(postgresText: Substring, type: PostgresDataType) throws(PostgresDecodingError.Reason) {
        guard type == .int4 || type == .int2 else { throw .typeMismatch }
        guard let value = Int32(postgresText) else { throw .invalidText }
        self = value
    }
}

extension Bool: PostgresDecodable {
    public init(postgresText: Substring, type: PostgresDataType) throws(PostgresDecodingError.Reason) {
        guard type == .bool else { throw .typeMismatch }
        switch postgresText {
        case "t": self = true
        case "f": self = false
        default: throw .invalidText
        }
    }
}

extension Double: PostgresDecodable {
    public init(postgresText: Substring, type: PostgresDataType) throws(PostgresDecodingError.Reason) {
        guard type == .float8 || type == .float4 || type == .numeric else { throw .typeMismatch }
        switch postgresText {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default:
            guard let value = Double(postgresText) else { throw .invalidText }
            self = value
        }
    }
}

extension UUID: PostgresDecodable {
    public init(postgresText: Substring, type: PostgresDataType) throws(PostgresDecodingError.Reason) {
        guard type == .uuid else { throw .typeMismatch }
        guard let value = UUID(canonicalText: postgresText) else { throw .invalidText }
        self = value
    }
}

extension Date: PostgresDecodable {
    /// `timestamptz`, and `timestamp` read as UTC.
    public init(postgresText: Substring, type: PostgresDataType) throws(PostgresDecodingError.Reason) {
        guard type == .timestamptz || type == .timestamp else { throw .typeMismatch }
        guard let value = PostgresTimestamp.parse(postgresText) else { throw .invalidText }
        self = value
    }
}

extension Array: PostgresDecodable where Element: PostgresArrayElement {
    public init(postgresText: Substring, type: PostgresDataType) throws(PostgresDecodingError.Reason) {
        self = try Element.decodePostgresArray(text: postgresText, type: type)
    }
}
