import Foundation

/// Where and how to connect, and how the pool behaves.
public struct PostgresConfiguration: Sendable, Hashable {
    /// A host name, an IP address, or an absolute directory holding the server's Unix socket.
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var applicationName: String?
    /// libpq's `sslmode` (`disable`, `prefer`, `require`, `verify-full`, …); `nil` = libpq's default.
    public var sslMode: String?
    /// How long a connection attempt may take. libpq counts whole seconds (at least 2).
    public var connectTimeout: Duration
    /// The default `statement_timeout` of every pooled connection; `nil` = the server's setting.
    /// A transaction can override it (`PostgresPool.transaction(statementTimeout:)`).
    public var statementTimeout: Duration?
    /// How many connections the pool opens at most.
    public var poolSize: Int
    /// How long a caller waits for a free connection before `PostgresError.Kind.poolTimeout`.
    public var poolAcquireTimeout: Duration
    /// Several servers to try in order, for failover (libpq's comma lists): `hosts` replaces `host` and `ports`
    /// replaces `port` when set, e.g. `db1,db2` and `5432,5432`.
    public var hosts: String?
    public var ports: String?
    /// libpq's `target_session_attrs`: with several hosts, `read-write` (or `primary`) connects to the one that is the
    /// primary now, so a failover (Patroni, pg_auto_failover) needs no change of configuration.
    public var targetSessionAttributes: String?

    public init(
        host: String = "127.0.0.1",
        port: Int = 5432,
        user: String,
        password: String? = nil,
        database: String,
        applicationName: String? = nil,
        sslMode: String? = nil,
        connectTimeout: Duration = .seconds(5),
        statementTimeout: Duration? = nil,
        poolSize: Int = 10,
        poolAcquireTimeout: Duration = .seconds(10)
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.applicationName = applicationName
        self.sslMode = sslMode
        self.connectTimeout = connectTimeout
        self.statementTimeout = statementTimeout
        self.poolSize = poolSize
        self.poolAcquireTimeout = poolAcquireTimeout
    }

    /// Parses `postgres://user:password@host:port/database?sslmode=require&application_name=vppd`.
    ///
    /// User, password and database are percent-decoded; a percent-encoded absolute path as host
    /// (`%2Fvar%2Frun%2Fpostgresql`) selects a Unix socket directory. Also understood:
    /// `connect_timeout` (seconds), `statement_timeout` (milliseconds), `pool_size`,
    /// `pool_acquire_timeout` (milliseconds), and for failover across servers libpq's `host` and `port` lists and
    /// `target_session_attrs` (`postgres://vpp@/vpp?host=db1,db2&port=5432,5432&target_session_attrs=read-write`).
    /// Unknown parameters are rejected so typos show.
    public init(url: String) throws(PostgresError) {
        func invalid(_ why: String) -> PostgresError {
            // The URL itself is not quoted: it may hold a password.
            PostgresError(kind: .invalidArgument, message: "invalid PostgreSQL URL: \(why)")
        }
        guard let components = URLComponents(string: url) else { throw invalid("not a URL") }
        guard components.scheme == "postgres" || components.scheme == "postgresql" else {
            throw invalid("the scheme must be postgres:// or postgresql://")
        }
        guard let user = components.user, !user.isEmpty else { throw invalid("no user name") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw invalid("no database name") }
        let host = components.host.flatMap { $0.removingPercentEncoding } ?? "127.0.0.1"
        self.init(
            host: host.isEmpty ? "127.0.0.1" : host,
            port: components.port ?? 5432,
            user: user,
            password: components.password,
            database: database
        )
        for item in components.queryItems ?? [] {
            guard let value = item.value, !value.isEmpty else { throw invalid("\(item.name) has no value") }
            func number() throws(PostgresError) -> Int {
                guard let number = Int(value), number >= 0 else { throw invalid("\(item.name) must be a number") }
                return number
            }
            switch item.name {
            case "sslmode": self.sslMode = value
            case "application_name": self.applicationName = value
            case "connect_timeout": self.connectTimeout = .seconds(try number())
            case "statement_timeout": self.statementTimeout = .milliseconds(try number())
            case "pool_size": self.poolSize = max(1, try number())
            case "pool_acquire_timeout": self.poolAcquireTimeout = .milliseconds(try number())
            case "host": self.hosts = value
            case "port":
                let ports = value.split(separator: ",", omittingEmptySubsequences: false)
                guard ports.allSatisfy({ UInt16($0) != nil }) else {
                    throw invalid("port must be a number or a comma list of numbers")
                }
                self.ports = value
            case "target_session_attrs":
                let known = ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"]
                guard known.contains(value) else {
                    throw invalid("target_session_attrs must be one of \(known.joined(separator: ", "))")
                }
                self.targetSessionAttributes = value
            default: throw invalid("unknown parameter \(item.name)")
            }
        }
    }

    /// The keyword/value pairs handed to `PQconnectdbParams`. Values are passed as they are, so
    /// nothing needs escaping; session settings that the row decoding relies on (UTF-8, ISO dates
    /// in UTC) are fixed here through `options`.
    var connectionParameters: [(keyword: String, value: String)] {
        var parameters: [(String, String)] = [
            ("host", hosts ?? host),
            ("port", ports ?? String(port)),
            ("user", user),
            ("dbname", database),
            ("connect_timeout", String(max(2, Int(connectTimeout.components.seconds)))),
            ("client_encoding", "UTF8"),
            ("options", sessionOptions),
        ]
        if let password { parameters.append(("password", password)) }
        if let applicationName { parameters.append(("application_name", applicationName)) }
        if let sslMode { parameters.append(("sslmode", sslMode)) }
        if let targetSessionAttributes { parameters.append(("target_session_attrs", targetSessionAttributes)) }
        return parameters
    }

    /// Server settings applied to every session at connect time (`-c name=value`; the values
    /// contain no spaces or backslashes, so they need no escaping in this option syntax).
    var sessionOptions: String {
        var options = "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3"
        if let statementTimeout { options += " -c statement_timeout=\(statementTimeout.wholeMilliseconds)" }
        return options
    }

    /// A libpq connection string (`host='…' port='…'`) with every value single-quoted and escaped,
    /// for handing to tools such as `psql`. Holds the password if there is one: do not log it.
    public var conninfo: String {
        connectionParameters.map { "\($0.keyword)=\(Self.quoteConninfoValue($0.value))" }.joined(separator: " ")
    }

    static func quoteConninfoValue(_ value: String) -> String {
        var quoted = "'"
        for character in value {
            if character == "'" || character == "\\" { quoted.append("\\") }
            quoted.append(character)
        }
        return quoted + "'"
    }

    /// A copy pointing to another database on the same server.
    public func withDatabase(_ database: String) -> PostgresConfiguration {
        var copy = self
        copy.database = database
        return copy
    }
}

extension Duration {
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
