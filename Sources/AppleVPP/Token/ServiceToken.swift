public import Foundation

/// A content token (sToken) from a `.vpptoken` file.
///
/// The file holds Base64 text; decoded, it is JSON with `token`, `expDate` and `orgName`. The **whole Base64 string**
/// is the bearer credential Apple expects on every call, so this type keeps it and never prints it: `description`,
/// `debugDescription` and `dump` show only the organisation and the expiry date.
public struct ServiceToken: Sendable, Hashable {
    /// The bearer credential: the file's Base64 text, without surrounding whitespace. Secret: never log it.
    public let bearerCredential: String
    /// `orgName` from the token (Apple's organisation or location name).
    public let orgName: String
    /// `expDate` from the token.
    public let expirationDate: Date

    /// Parses and validates the contents of a `.vpptoken` file.
    /// - Parameters:
    ///   - fileContents: the file's bytes; whitespace and newlines around (or wrapped inside) the Base64 are ignored.
    ///   - now: the time the expiry is checked against (injected so tests and callers control it).
    public init(fileContents: some Collection<UInt8>, now: Date) throws(ServiceTokenError) {
        var text = String(decoding: fileContents, as: UTF8.self)
        text.removeAll { $0.isWhitespace }
        guard !text.isEmpty else { throw .empty }
        guard let decoded = Data(base64Encoded: text) else { throw .notBase64 }
        guard let object = try? JSONSerialization.jsonObject(with: decoded), let fields = object as? [String: Any]
        else { throw .notJSON }

        func string(_ name: String) throws(ServiceTokenError) -> String {
            guard let value = fields[name], !(value is NSNull) else { throw .missingField(name) }
            guard let string = value as? String else { throw .invalidField(name) }
            guard !string.isEmpty else { throw .missingField(name) }
            return string
        }
        _ = try string("token")
        let orgName = try string("orgName")
        let expDate = try string("expDate")
        guard let expiration = AppleDate.parse(expDate) else { throw .badExpiryDate }
        guard expiration > now else { throw .expired(expiration) }

        self.bearerCredential = text
        self.orgName = orgName
        self.expirationDate = expiration
    }

    /// Parses and validates a `.vpptoken` file's text.
    public init(fileContents: String, now: Date) throws(ServiceTokenError) {
        try self.init(fileContents: Array(fileContents.utf8), now: now)
    }

    /// Whether the token has expired at `date`.
    public func isExpired(at date: Date) -> Bool { expirationDate <= date }
}

extension ServiceToken: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "ServiceToken(orgName: \(orgName), expDate: \(AppleDate.format(expirationDate)), token: <redacted>)"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(self, children: ["orgName": orgName, "expirationDate": expirationDate], displayStyle: .struct)
    }
}

/// Why a `.vpptoken` file was refused. Each case says what to do; none of them carries the token.
public enum ServiceTokenError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file is empty (or only whitespace).
    case empty
    /// The file is not Base64 text: not a `.vpptoken` file, or a damaged or truncated one.
    case notBase64
    /// The Base64 decodes, but not to a JSON object.
    case notJSON
    /// A required field (`token`, `expDate`, `orgName`) is absent or empty.
    case missingField(String)
    /// A field is present but not a string.
    case invalidField(String)
    /// `expDate` is not a date in Apple's format (`2030-11-08T22:33:22+0000`).
    case badExpiryDate
    /// The token expired at this date.
    case expired(Date)

    public var description: String {
        switch self {
        case .empty:
            return
                "The service token file is empty; download the .vpptoken file again from Apple Business Manager."
        case .notBase64:
            return
                "The service token file is not Base64 text; it is not a .vpptoken file or it is damaged or truncated."
        case .notJSON:
            return "The service token file decodes, but not to the JSON Apple puts in a .vpptoken file."
        case .missingField(let name):
            return "The service token has no '\(name)' field; download the .vpptoken file again."
        case .invalidField(let name):
            return "The service token's '\(name)' field is not a string; download the .vpptoken file again."
        case .badExpiryDate:
            return "The service token's 'expDate' is not a date in Apple's format (2030-11-08T22:33:22+0000)."
        case .expired(let date):
            return "The service token expired on \(AppleDate.format(date)); download a new .vpptoken file."
        }
    }
}
