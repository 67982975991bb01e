/// PostgreSQL's one-dimensional array literal syntax: `{"a","b \"c\"",NULL}`.
enum PostgresArrayLiteral {
    /// Every element is double-quoted, with `\` and `"` backslash-escaped, so commas, braces,
    /// spaces and the word NULL inside values need no further care.
    static func format(_ elements: [String?]) -> String {
        var literal = "{"
        for (index, element) in elements.enumerated() {
            if index > 0 { literal.append(",") }
            guard let element else {
                literal.append("NULL")
                continue
            }
            literal.append("\"")
            for character in element.unicodeScalars {
                if character == "\\" || character == "\"" { literal.unicodeScalars.append("\\") }
                literal.unicodeScalars.append(character)
            }
            literal.append("\"")
        }
        literal.append("}")
        return literal
    }

    static func format(_ elements: [String]) -> String {
        format(elements.map { Optional($0) })
    }

    /// Parses the server's output of a one-dimensional array. Unquoted `NULL` is SQL NULL.
    static func parse(_ text: Substring) throws(PostgresDecodingError.Reason) -> [String?] {
        let scalars = Array(text.unicodeScalars)
        guard scalars.first == "{", scalars.last == "}" else { throw .invalidText }
        var elements: [String?] = []
        var index = 1
        let end = scalars.count - 1
        if index == end { return [] }
        while index < end {
            if scalars[index] == "\"" {
                var element = String.UnicodeScalarView()
                index += 1
                while true {
                    guard index < end else { throw .invalidText }
                    let scalar = scalars[index]
                    if scalar == "\\" {
                        index += 1
                        guard index < end else { throw .invalidText }
                        element.append(scalars[index])
                    } else if scalar == "\"" {
                        index += 1
                        break
                    } else {
                        element.append(scalar)
                    }
                    index += 1
                }
                elements.append(String(element))
            } else {
                var element = String.UnicodeScalarView()
                while index < end, scalars[index] != "," {
                    // Nested arrays are not supported.
                    if scalars[index] == "{" || scalars[index] == "\"" { throw .invalidText }
                    element.append(scalars[index])
                    index += 1
                }
                let value = String(element)
                elements.append(value == "NULL" ? nil : value)
            }
            if index < end {
                guard scalars[index] == "," else { throw .invalidText }
                index += 1
                if index == end { throw .invalidText }
            }
        }
        return elements
    }
}
