/// Every metadata key the service's log lines use, in one place (issue 17), so that one thing has one name in every
/// module (a tenant is `tenant_id` whether the job worker, the sync or the RPC server logs it) and a log query written
/// once finds them all. Scripts/check-boundaries.py refuses a string literal as a metadata key outside this file.
///
/// AppleVPP and the simulator are libraries of their own (they know nothing of this service) and keep their keys.
public enum LogKey {
    // MARK: Who and what

    /// The tenant a line is about (its UUID).
    public static let tenantID = "tenant_id"
    /// A VPP token (its UUID in this service).
    public static let tokenID = "token_id"
    /// Apple's location id of a token.
    public static let location = "location"
    /// An API key's id.
    public static let keyID = "key_id"
    /// The MDM that held a token before this service took it over (Apple's mdmInfo name).
    public static let tookOverFrom = "took_over_from"
    /// The caller as authenticated: operator, tenant, or none.
    public static let principal = "principal"
    /// A name the line is about (e.g. a migration's).
    public static let name = "name"
    /// An App Store product id (Apple's adamId).
    public static let adamID = "adam_id"

    // MARK: Apple's notifications (issue 18)

    /// A notification's type (ASSET_COUNT, ...).
    public static let notificationType = "notification_type"
    /// A notification's id (Apple's notificationId).
    public static let notificationID = "notification_id"

    // MARK: RPC

    /// The remote address of a connection.
    public static let peer = "peer"
    /// The call id on its connection.
    public static let callID = "call_id"
    /// The full method name, `/vpp.v1.Service/Method`.
    public static let method = "method"
    /// An RPC status code's name, or another state.
    public static let status = "status"
    /// A call's time from its first frame to its last, in milliseconds.
    public static let durationMilliseconds = "duration_ms"
    /// A frame's or message's length in bytes.
    public static let length = "length"
    /// A limit that was reached.
    public static let limit = "limit"
    /// What arrived when something else was expected.
    public static let received = "received"
    /// What was expected.
    public static let expected = "expected"
    /// A status's message (e.g. the one a connection is closed with).
    public static let message = "message"
    /// How a connection's client identified itself.
    public static let client = "client"
    /// Whether a listener speaks TLS.
    public static let tls = "tls"
    /// The RPC listener's address.
    public static let rpc = "rpc"
    /// A listening address.
    public static let address = "address"
    /// A port.
    public static let port = "port"
    /// Open connections.
    public static let connections = "connections"
    /// Connections the descriptor limit allows.
    public static let connectionsAllowed = "connections_allowed"
    /// The configured connection limit.
    public static let maxConnections = "max_connections"
    /// The process's descriptor limit.
    public static let descriptorLimit = "descriptor_limit"
    /// A byte budget (e.g. the server's for partial frames).
    public static let budget = "budget"
    /// A graceful shutdown's grace period.
    public static let gracePeriod = "grace_period"

    // MARK: Jobs

    /// A job's id.
    public static let jobID = "job_id"
    /// A job's kind (sync, push, ...).
    public static let jobKind = "job_kind"
    /// The attempt number of a job or a request.
    public static let attempt = "attempt"
    /// The job worker that owns a job.
    public static let worker = "worker"
    /// The job kinds a worker runs.
    public static let kinds = "kinds"
    /// How many jobs (running, given back).
    public static let jobs = "jobs"
    /// How many jobs run at once.
    public static let concurrency = "concurrency"
    /// Why something happened (a job's outcome, a connection's end).
    public static let reason = "reason"
    /// A wait before the next try.
    public static let after = "after"

    // MARK: Storage

    /// A database (its name or address).
    public static let database = "db"
    /// A PostgreSQL data directory.
    public static let dataDirectory = "data_dir"
    /// A PostgreSQL error's SQLSTATE.
    public static let sqlstate = "sqlstate"
    /// A PostgreSQL backend's process id.
    public static let pid = "pid"
    /// LISTEN channels.
    public static let channels = "channels"
    /// A schema version.
    public static let version = "version"
    /// The schema version a migration goes to.
    public static let toVersion = "to_version"
    /// How many tenants.
    public static let tenants = "tenants"

    // MARK: Anything

    /// The error, as its description.
    public static let error = "error"
    /// How many items.
    public static let count = "count"
    /// Changes buffered for a change-feed stream (issue 19).
    public static let buffered = "buffered"
    /// Tokens given an expiry warning in the change feed (issue 19).
    public static let tokensWarned = "tokens_warned"
    /// A file system path or a URL path.
    public static let path = "path"
    /// How long something took.
    public static let took = "took"
}
