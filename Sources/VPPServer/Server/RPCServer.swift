public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix
import NIOSSL
public import ServiceLifecycle
import VPPLogKeys
public import VPPWire

/// The RPC server: accepts TCP connections, frames them, and serves the router's methods.
///
/// Run it as a `Service` in a `ServiceGroup`: on graceful shutdown (SIGTERM) it stops accepting, sends every
/// connection a GoAway, lets calls in flight finish within the grace period, then closes what is left.
public final class RPCServer: Service, Sendable {
    public let configuration: ServerConfiguration
    private let environment: ConnectionEnvironment
    private let group: any EventLoopGroup
    private let state = NIOLockedValueBox(State())
    /// What partial frames announce across every connection (issue 16): bounded by `frameBudgetBytes`.
    public let frameBudget: FrameBudget

    private struct State {
        var serverChannel: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var shuttingDown = false
    }

    /// - Parameters:
    ///   - errorMapper: turns any error a handler throws that is not an `RPCError` into one (the storage layer maps
    ///     its errors here, in one place). The default answers INTERNAL and logs the error.
    ///   - callLogLevel: the level of the one log line every call writes when it ends.
    public init(
        configuration: ServerConfiguration,
        router: RPCRouter,
        authenticator: any Authenticator,
        metrics: ServerMetrics = ServerMetrics(),
        logger: Logger = Logger(label: "vpp.rpc"),
        callLogLevel: Logger.Level = .info,
        errorMapper: (@Sendable (any Error, Logger) -> RPCError)? = nil,
        eventLoopGroup: (any EventLoopGroup)? = nil
    ) {
        self.configuration = configuration
        self.environment = ConnectionEnvironment(
            configuration: configuration,
            router: router,
            authenticator: authenticator,
            metrics: metrics,
            logger: logger,
            callLogLevel: callLogLevel,
            errorMapper: errorMapper ?? RPCServer.defaultErrorMapper,
            sweepers: ConnectionSweepers(
                authenticationTimeout: configuration.authenticationTimeout,
                idleTimeout: configuration.idleTimeout
            )
        )
        self.group = eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        self.frameBudget = FrameBudget(limit: max(1, configuration.frameBudgetBytes))
    }

    /// Answers INTERNAL for an error no one mapped, and logs it (the client sees no internals).
    public static let defaultErrorMapper: @Sendable (any Error, Logger) -> RPCError = { error, logger in
        if let error = error as? RPCError { return error }
        logger.error("Call failed with an unexpected error", metadata: [LogKey.error: "\(String(reflecting: error))"])
        return .internalError("An internal error occurred; the server log has the details under this call's id.")
    }

    /// The port the server listens on, once started.
    public var localPort: Int? {
        self.state.withLockedValue { $0.serverChannel?.localAddress?.port }
    }

    public var metrics: ServerMetrics { self.environment.metrics }

    /// The connections whose deadlines the event loops' sweepers check now (every open, admitted connection).
    func sweptConnectionCount() async throws -> Int {
        try await self.environment.sweepers.connectionCount()
    }

    /// Whether a shutdown has begun: the listener is closed and connections are draining (readiness turns false).
    public var isShuttingDown: Bool {
        self.state.withLockedValue { $0.shuttingDown }
    }

    /// Binds the listening socket. Returns once the server accepts connections.
    public func start() async throws {
        try self.configuration.validate()
        let environment = self.environment
        let maxFrameBytes = self.configuration.maxFrameBytes
        let preAuthenticationFrameBytes = self.configuration.preAuthenticationFrameBytes
        let budget = self.frameBudget
        let tls = self.configuration.tls
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
                    }
                    let limits = FrameLimits(
                        preAuthenticationBytes: preAuthenticationFrameBytes,
                        maxFrameBytes: maxFrameBytes,
                        budget: budget
                    )
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(limits: limits)))
                    try channel.pipeline.syncOperations.addHandler(
                        ServerConnectionHandler(environment: environment, frameLimits: limits)
                    )
                    self?.track(channel)
                }
            }
        let channel = try await bootstrap.bind(host: self.configuration.host, port: self.configuration.port).get()
        self.state.withLockedValue { $0.serverChannel = channel }
        self.environment.logger.info(
            "RPC server listening",
            metadata: [
                LogKey.address: "\(channel.localAddress.map { "\($0)" } ?? "?")",
                LogKey.tls: "\(tls != nil)",
            ]
        )
    }

    private func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let drainNow = self.state.withLockedValue { state -> Bool in
            state.connections[id] = channel
            return state.shuttingDown
        }
        channel.closeFuture.whenComplete { [weak self] _ in
            _ = self?.state.withLockedValue { $0.connections.removeValue(forKey: id) }
        }
        if drainNow {
            channel.pipeline.fireUserInboundEventTriggered(DrainConnectionEvent())
        }
    }

    /// Runs until graceful shutdown (or cancellation), then drains.
    public func run() async throws {
        try await self.start()
        try? await gracefulShutdown()
        await self.shutdown(gracePeriod: Task.isCancelled ? .zero : self.configuration.shutdownGracePeriod)
    }

    /// Stops accepting, asks every connection to drain, waits up to `gracePeriod` for calls in flight, then closes
    /// whatever is still open (cancelling its calls).
    public func shutdown(gracePeriod: Duration? = nil) async {
        let grace = gracePeriod ?? self.configuration.shutdownGracePeriod
        let (server, connections) = self.state.withLockedValue { state in
            state.shuttingDown = true
            let server = state.serverChannel
            state.serverChannel = nil
            return (server, Array(state.connections.values))
        }
        try? await server?.close()
        self.environment.logger.info(
            "RPC server draining",
            metadata: [LogKey.connections: "\(connections.count)", LogKey.gracePeriod: "\(grace)"]
        )
        for connection in connections {
            connection.pipeline.fireUserInboundEventTriggered(DrainConnectionEvent())
        }
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline {
            let open = self.state.withLockedValue { $0.connections.count }
            if open == 0 { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        let remaining = self.state.withLockedValue { Array($0.connections.values) }
        if !remaining.isEmpty {
            self.environment.logger.notice(
                "Grace period over; closing connections with calls still in flight",
                metadata: [LogKey.connections: "\(remaining.count)"]
            )
        }
        for connection in remaining {
            try? await connection.close()
        }
        self.environment.logger.info("RPC server stopped")
    }
}
