/// SQL text plus its bound parameters.
///
/// Written as a string literal with interpolation, every `\(value)` becomes a placeholder `$n`
/// and the value travels beside the SQL, never inside it:
///
///     let rows = try await pool.query("SELECT id FROM users WHERE email = \(email) AND active = \(true)")
///
/// `\(identifier: name)` inserts a quoted identifier (see `quoteIdentifier`), `\(unescaped: sql)`
/// inserts SQL text verbatim and must only be given text written in code.
public struct PostgresQuery: Sendable, Hashable, ExpressibleByStringInterpolation {
    public var sql: String
    public var binds: [PostgresBind]
    /// An error found while building (an invalid identifier), thrown when the query is run.
    var buildError: PostgresError?

    /// SQL that refers to `binds` as `$1`, `$2`, …; "unsafe" because the SQL text is trusted as is.
    public init(unsafeSQL sql: String, binds: [PostgresBind] = []) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.sql = stringInterpolation.sql
        self.binds = stringInterpolation.binds
        self.buildError = stringInterpolation.buildError
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [PostgresBind] = []
        var buildError: PostgresError?

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql.append(literal)
        }

        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value) {
            append(PostgresBind(value))
        }

        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            append(PostgresBind(value))
        }

        public mutating func appendInterpolation(bind: PostgresBind) {
            append(bind)
        }

        /// A schema, table or column name, double-quoted.
        public mutating func appendInterpolation(identifier: String) {
            do {
                sql.append(try quoteIdentifier(identifier))
            } catch {
                buildError = buildError ?? error
            }
        }

        /// SQL text written in code (a keyword, an ORDER BY direction); never user input.
        public mutating func appendInterpolation(unescaped sql: String) {
            self.sql.append(sql)
        }

        private mutating func append(_ bind: PostgresBind) {
            binds.append(bind)
            sql.append("$\(binds.count)")
        }
    }
}
