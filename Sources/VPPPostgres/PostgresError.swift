import Foundation

/// An error from the server, from libpq, or from the pool.
///
/// Never holds a bound parameter value: the server echoes values in some messages (`invalid input
/// syntax for type uuid: "…"`) and in the detail of integrity errors (`Key (email)=(…) already
/// exists.`); those parts are redacted when the error is built, because parameters may be secrets.
public struct PostgresError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What the caller can do about the error, derived from the SQLSTATE or from where it arose.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        fileprivate let name: String
        public var description: String { name }

        /// No connection could be made, or it was lost (SQLSTATE class 08, 57P01...57P03).
        public static let connectionFailure = Kind(name: "connectionFailure")
        /// 40001: retry the transaction.
        public static let serializationFailure = Kind(name: "serializationFailure")
        /// 40P01: retry the transaction.
        public static let deadlock = Kind(name: "deadlock")
        /// 23505.
        public static let uniqueViolation = Kind(name: "uniqueViolation")
        /// 23503.
        public static let foreignKeyViolation = Kind(name: "foreignKeyViolation")
        /// 23514.
        public static let checkViolation = Kind(name: "checkViolation")
        /// 57014: the statement timeout fired or the query was cancelled.
        public static let queryCanceled = Kind(name: "queryCanceled")
        /// 42P01.
        public static let undefinedTable = Kind(name: "undefinedTable")
        /// No pooled connection became free within the acquire timeout.
        public static let poolTimeout = Kind(name: "poolTimeout")
        /// The pool or listener was shut down.
        public static let shutdown = Kind(name: "shutdown")
        /// The caller passed something this module refuses (an empty identifier, a NUL byte, …).
        public static let invalidArgument = Kind(name: "invalidArgument")
        /// Anything else; look at `sqlState`.
        public static let other = Kind(name: "other")

        /// The classification of a server SQLSTATE.
        public init(sqlState: String) {
            switch sqlState {
            case "40001": self = .serializationFailure
            case "40P01": self = .deadlock
            case "23505": self = .uniqueViolation
            case "23503": self = .foreignKeyViolation
            case "23514": self = .checkViolation
            case "57014": self = .queryCanceled
            case "42P01": self = .undefinedTable
            case "57P01", "57P02", "57P03": self = .connectionFailure
            case _ where sqlState.hasPrefix("08"): self = .connectionFailure
            default: self = .other
            }
        }

        fileprivate init(name: String) { self.name = name }
    }

    public var kind: Kind
    /// The five-character SQLSTATE from the server; `nil` for errors raised on the client side
    /// (pool timeout, invalid argument, and connection failures where libpq reports none).
    public var sqlState: String?
    /// `ERROR`, `FATAL`, `PANIC` (server errors only).
    public var severity: String?
    public var message: String
    /// May describe the offending row: values are redacted (see the type's comment).
    public var detail: String?
    public var hint: String?
    public var constraint: String?
    public var schema: String?
    public var table: String?
    public var column: String?

    public init(
        kind: Kind,
        sqlState: String? = nil,
        severity: String? = nil,
        message: String,
        detail: String? = nil,
        hint: String? = nil,
        constraint: String? = nil,
        schema: String? = nil,
        table: String? = nil,
        column: String? = nil
    ) {
        self.kind = kind
        self.sqlState = sqlState
        self.severity = severity
        self.message = message
        self.detail = detail
        self.hint = hint
        self.constraint = constraint
        self.schema = schema
        self.table = table
        self.column = column
    }

    /// Whether running the whole transaction again may succeed.
    public var isRetryableTransactionFailure: Bool {
        kind == .serializationFailure || kind == .deadlock
    }

    public var description: String {
        var text = "PostgresError.\(kind)"
        if let sqlState { text += " [\(sqlState)]" }
        text += ": \(message)"
        if let constraint { text += " (constraint \(constraint))" }
        if let detail { text += " DETAIL: \(detail)" }
        if let hint { text += " HINT: \(hint)" }
        return text
    }
}

extension PostgresError {
    /// Builds a server error, redacting the values the server echoes back.
    static func server(
        sqlState: String?,
        severity: String?,
        message: String,
        detail: String?,
        hint: String?,
        constraint: String?,
        schema: String?,
        table: String?,
        column: String?
    ) -> PostgresError {
        let state = sqlState ?? ""
        return PostgresError(
            kind: sqlState.map(Kind.init(sqlState:)) ?? .other,
            sqlState: sqlState,
            severity: severity,
            message: redactingValues(inMessage: message, sqlState: state),
            detail: detail.map { redactingValues(inDetail: $0, sqlState: state) },
            hint: hint,
            constraint: constraint,
            schema: schema,
            table: table,
            column: column
        )
    }

    static func connectionFailure(_ message: String, sqlState: String? = nil) -> PostgresError {
        PostgresError(kind: .connectionFailure, sqlState: sqlState, message: message)
    }
}

/// Data exceptions (class 22) quote the offending input in double quotes: `invalid input syntax
/// for type integer: "abc"`. Everything inside double quotes is replaced by an ellipsis.
func redactingValues(inMessage message: String, sqlState: String) -> String {
    guard sqlState.hasPrefix("22") else { return message }
    var result = ""
    var inside = false
    for character in message {
        if character == "\"" {
            result.append(character)
            if !inside { result.append("…") }
            inside.toggle()
        } else if !inside {
            result.append(character)
        }
    }
    return result
}

/// Integrity errors (class 23) describe the row: `Key (email)=(a@b.c) already exists.` or
/// `Failing row contains (1, secret).` Column names are kept, values are not.
func redactingValues(inDetail detail: String, sqlState: String) -> String {
    guard sqlState.hasPrefix("23") || sqlState.hasPrefix("22") else { return detail }
    if detail.hasPrefix("Failing row contains") { return "Failing row contains (…)." }
    if let keyStart = detail.range(of: ")=("),
        let keyEnd = detail.range(of: ")", options: .backwards, range: keyStart.upperBound..<detail.endIndex)
    {
        return String(detail[..<keyStart.upperBound]) + "…" + String(detail[keyEnd.lowerBound...])
    }
    if sqlState.hasPrefix("22") { return "(redacted)" }
    return detail
}
