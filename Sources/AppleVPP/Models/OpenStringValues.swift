/// Apple's string-valued enumerations. Each is a struct around the raw string, not a Swift `enum`, so a value
/// Apple adds later still decodes (Apple: "The server may add additional ... codes in the future").
public protocol AppleStringValue: RawRepresentable, Codable, Hashable, Sendable, CustomStringConvertible,
    ExpressibleByStringLiteral
where RawValue == String {
    init(rawValue: String)
}

extension AppleStringValue {
    public init(stringLiteral value: String) { self.init(rawValue: value) }
    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
    public var description: String { rawValue }
}

/// `pricingParam`: the quality an asset was bought in. Asset identity is (`adamId`, `pricingParam`).
public struct PricingParam: AppleStringValue {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// Standard quality.
    public static let standard: Self = "STDQ"
    /// High quality (books).
    public static let high: Self = "PLUS"
}

/// `productType`: `App` or `Book`.
public struct ProductType: AppleStringValue {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let app: Self = "App"
    public static let book: Self = "Book"
}

/// A user's `status`.
public struct UserStatus: AppleStringValue {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// Created; has an `inviteCode`, no Apple Account yet.
    public static let registered: Self = "Registered"
    /// Accepted the invitation (or was created with a Managed Apple Account); has an `idHash`.
    public static let associated: Self = "Associated"
    public static let retired: Self = "Retired"
    public static let deleted: Self = "Deleted"
}

/// `eventStatus` of an asynchronous event.
public struct EventStatus: AppleStringValue {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let pending: Self = "PENDING"
    public static let complete: Self = "COMPLETE"
    /// Failed, possibly partly: `numCompleted` and `failures` say what did not happen.
    public static let failed: Self = "FAILED"
}

/// `eventType` of an asynchronous event.
public struct EventType: AppleStringValue {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let associate: Self = "ASSOCIATE"
    public static let disassociate: Self = "DISASSOCIATE"
    public static let revoke: Self = "REVOKE"
    public static let create: Self = "CREATE"
    public static let update: Self = "UPDATE"
    public static let retire: Self = "RETIRE"
}
