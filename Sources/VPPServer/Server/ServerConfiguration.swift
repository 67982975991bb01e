/// The RPC server's settings. Every limit has a default that suits a production server; vppd exposes each one as a
/// flag, an environment variable and a config-file key.
public struct ServerConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port (tests); `RPCServer.localPort` tells which.
    public var port: Int
    /// Largest frame accepted or sent, in bytes. Refused from the length prefix, before the body is read.
    public var maxFrameBytes: Int
    /// Largest frame before the connection authenticated: only a Hello may come, well under 1 KiB. An unauthenticated
    /// peer can make the server hold no more than this.
    public var preAuthenticationFrameBytes: Int
    /// What frames still arriving may announce across all connections at once (partial frames are held in memory);
    /// past it a new partial frame closes its connection with RESOURCE_EXHAUSTED.
    public var frameBudgetBytes: Int
    /// Calls one connection may have in flight; more answer RESOURCE_EXHAUSTED.
    public var maxCallsInFlight: Int
    /// Connections open at once; more are told RESOURCE_EXHAUSTED and closed.
    public var maxConnections: Int
    /// Time a new connection has to send its Hello and be authenticated.
    public var authenticationTimeout: Duration
    /// A connection with no call in flight that sends nothing for this long is closed; so is one that leaves a frame
    /// incomplete for this long.
    public var idleTimeout: Duration
    /// The longest deadline a call may ask for, and the deadline of calls that ask for none. nil: no limit.
    public var maxCallDuration: Duration?
    /// On shutdown, how long calls in flight may take to finish before they are cancelled.
    public var shutdownGracePeriod: Duration
    /// Number of event loop threads; 0 means one per core.
    public var eventLoopThreads: Int
    /// Written into Welcome frames.
    public var serverVersion: String
    /// TLS on the RPC port; nil serves plain TCP (vppd allows that on loopback only unless told otherwise).
    public var tls: ServerTLS?

    public init(
        host: String = "127.0.0.1",
        port: Int = 7443,
        maxFrameBytes: Int = 4 * 1024 * 1024,
        preAuthenticationFrameBytes: Int = 16 * 1024,
        frameBudgetBytes: Int = 128 * 1024 * 1024,
        maxCallsInFlight: Int = 128,
        maxConnections: Int = 10_000,
        authenticationTimeout: Duration = .seconds(10),
        idleTimeout: Duration = .seconds(300),
        maxCallDuration: Duration? = .seconds(300),
        shutdownGracePeriod: Duration = .seconds(30),
        eventLoopThreads: Int = 0,
        serverVersion: String = "0.1.0",
        tls: ServerTLS? = nil
    ) {
        self.host = host
        self.port = port
        self.maxFrameBytes = maxFrameBytes
        self.preAuthenticationFrameBytes = preAuthenticationFrameBytes
        self.frameBudgetBytes = frameBudgetBytes
        self.maxCallsInFlight = maxCallsInFlight
        self.maxConnections = maxConnections
        self.authenticationTimeout = authenticationTimeout
        self.idleTimeout = idleTimeout
        self.maxCallDuration = maxCallDuration
        self.shutdownGracePeriod = shutdownGracePeriod
        self.eventLoopThreads = eventLoopThreads
        self.serverVersion = serverVersion
        self.tls = tls
    }

    /// Checks the settings; the message says which one is wrong.
    public func validate() throws {
        func check(_ condition: Bool, _ message: String) throws {
            if !condition { throw ConfigurationError(message: message) }
        }
        try check((0...65535).contains(self.port), "port must be 0...65535")
        try check(
            self.maxFrameBytes >= 1024 && self.maxFrameBytes <= 256 * 1024 * 1024,
            "max frame bytes must be 1 KiB...256 MiB"
        )
        try check(
            self.preAuthenticationFrameBytes >= 1024 && self.preAuthenticationFrameBytes <= self.maxFrameBytes,
            "the pre-authentication frame limit must be 1 KiB...max frame bytes"
        )
        try check(
            self.frameBudgetBytes >= self.maxFrameBytes,
            "the frame budget must hold at least one frame of max frame bytes"
        )
        try check(
            self.maxCallsInFlight >= 1 && self.maxCallsInFlight <= 65_536,
            "max calls in flight must be 1...65536"
        )
        try check(self.maxConnections >= 1, "max connections must be at least 1")
        try check(self.authenticationTimeout > .zero, "authentication timeout must be positive")
        try check(self.idleTimeout > .zero, "idle timeout must be positive")
        try check(self.shutdownGracePeriod >= .zero, "shutdown grace period must not be negative")
        try check(self.eventLoopThreads >= 0, "event loop threads must not be negative")
    }
}

/// A setting is out of range; the message names it.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { self.message }
}

extension Duration {
    /// The duration as a TimeAmount-friendly count of nanoseconds, saturating.
    var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = self.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return scaled &+ attoseconds / 1_000_000_000
    }
}
