/// A PostgreSQL type OID. Only the built-in types this module encodes or decodes are named.
public struct PostgresDataType: Sendable, Hashable, CustomStringConvertible {
    public var oid: UInt32
    public init(oid: UInt32) { self.oid = oid }

    /// Unspecified: the server infers the type from the context, as for an untyped literal.
    public static let unknownLiteral = PostgresDataType(oid: 0)
    public static let bool = PostgresDataType(oid: 16)
    public static let bytea = PostgresDataType(oid: 17)
    public static let char = PostgresDataType(oid: 18)
    public static let name = PostgresDataType(oid: 19)
    public static let int8 = PostgresDataType(oid: 20)
    public static let int2 = PostgresDataType(oid: 21)
    public static let int4 = PostgresDataType(oid: 23)
    public static let text = PostgresDataType(oid: 25)
    public static let oidType = PostgresDataType(oid: 26)
    public static let json = PostgresDataType(oid: 114)
    public static let float4 = PostgresDataType(oid: 700)
    public static let float8 = PostgresDataType(oid: 701)
    public static let unknown = PostgresDataType(oid: 705)
    public static let bpchar = PostgresDataType(oid: 1042)
    public static let varchar = PostgresDataType(oid: 1043)
    public static let timestamp = PostgresDataType(oid: 1114)
    public static let timestamptz = PostgresDataType(oid: 1184)
    public static let numeric = PostgresDataType(oid: 1700)
    public static let uuid = PostgresDataType(oid: 2950)
    public static let jsonb = PostgresDataType(oid: 3802)

    public static let boolArray = PostgresDataType(oid: 1000)
    public static let byteaArray = PostgresDataType(oid: 1001)
    public static let int2Array = PostgresDataType(oid: 1005)
    public static let int4Array = PostgresDataType(oid: 1007)
    public static let textArray = PostgresDataType(oid: 1009)
    public static let varcharArray = PostgresDataType(oid: 1015)
    public static let int8Array = PostgresDataType(oid: 1016)
    public static let float8Array = PostgresDataType(oid: 1022)
    public static let timestamptzArray = PostgresDataType(oid: 1185)
    public static let uuidArray = PostgresDataType(oid: 2951)

    /// The element type of a one-dimensional array type this module knows, else `nil`.
    public var arrayElementType: PostgresDataType? {
        switch self {
        case .boolArray: .bool
        case .byteaArray: .bytea
        case .int2Array: .int2
        case .int4Array: .int4
        case .textArray: .text
        case .varcharArray: .varchar
        case .int8Array: .int8
        case .float8Array: .float8
        case .timestamptzArray: .timestamptz
        case .uuidArray: .uuid
        default: nil
        }
    }

    public var description: String { "oid \(oid)" }
}
