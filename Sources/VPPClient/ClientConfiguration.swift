public import NIOCore

/// Where and how a `VPPClient` connects.
public struct ClientConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// An operator key or a tenant key.
    public var apiKey: String
    /// Names the client in the server's logs.
    public var clientName: String
    public var connectTimeout: Duration
    /// The deadline of calls that give none. nil: no deadline.
    public var defaultTimeout: Duration?
    /// The largest frame the client accepts from the server.
    public var maxFrameBytes: Int
    /// Whether a call on a closed or draining connection opens a new one by itself.
    public var reconnect: Bool
    public var eventLoopGroup: (any EventLoopGroup)?
    /// TLS or plain TCP. The default, `.automatic`, uses TLS with the system's CAs unless the host is loopback.
    public var security: TransportSecurity

    public init(
        host: String = "127.0.0.1",
        port: Int = 7443,
        apiKey: String,
        clientName: String = "vpp-swift-client/1",
        connectTimeout: Duration = .seconds(10),
        defaultTimeout: Duration? = .seconds(60),
        maxFrameBytes: Int = 64 * 1024 * 1024,
        reconnect: Bool = true,
        eventLoopGroup: (any EventLoopGroup)? = nil,
        security: TransportSecurity = .automatic
    ) {
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.clientName = clientName
        self.connectTimeout = connectTimeout
        self.defaultTimeout = defaultTimeout
        self.maxFrameBytes = maxFrameBytes
        self.reconnect = reconnect
        self.eventLoopGroup = eventLoopGroup
        self.security = security
    }
}
