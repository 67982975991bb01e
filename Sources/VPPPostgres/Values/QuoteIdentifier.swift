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
    guard !name.utf8.contains(0) else {
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
