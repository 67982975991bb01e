import Foundation

/// Quotes an SQL identifier (schema, table, column, channel name) for use in SQL text:
/// wraps it in double quotes and doubles any inner double quote.
///
/// Identifiers cannot be bound as parameters, so every identifier that enters SQL text goes
/// through this one function. Empty names and names containing NUL are rejected: PostgreSQL
/// cannot represent them, so they can only come from a bug in the caller.
public func quoteIdentifier(_ name: String) throws(PostgresError) -> String {
    guard !name.isEmpty else {
        throw PostgresError(kind: .invalidArgument, message: "an SQL identifier must not be empty")
    }
    guard !name.containsNUL else {
        throw PostgresError(kind: .invalidArgument, message: "an SQL identifier must not contain NUL")
    }
    var quoted = "\""
    quoted.reserveCapacity(name.utf8.count + 2)
    for character in name.unicodeScalars {
        if character == "\"" { quoted.unicodeScalars.append("\"") }
        quoted.unicodeScalars.append(character)
    }
    quoted.unicodeScalars.append("\"")
    return quoted
}

extension String {
    /// Whether the text has a NUL byte, which a C string passed to libpq would cut short. `memchr` over the contiguous
    /// UTF-8 of native strings: SQL texts are checked before every statement, and a byte-by-byte scan through
    /// `String.UTF8View` was a few per cent of a read's time (docs/performance.md).
    var containsNUL: Bool {
        if let found = self.utf8.withContiguousStorageIfAvailable({ bytes -> Bool in
            guard let base = bytes.baseAddress else { return false }
            return memchr(base, 0, bytes.count) != nil
        }) {
            return found
        }
        return self.utf8.contains(0)
    }
}
