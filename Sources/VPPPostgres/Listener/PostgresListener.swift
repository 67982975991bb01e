import Foundation
public import Logging
import NIOConcurrencyHelpers
import VPPLogKeys

/// A notification sent with `NOTIFY` or `pg_notify`.
public struct PostgresNotification: Sendable, Hashable {
    public var channel: String
    public var payload: String

    public init(channel: String, payload: String) {
        self.channel = channel
        self.payload = payload
    }
}

/// What a `PostgresListener` reports.
public enum PostgresListenerEvent: Sendable, Hashable {
    /// The first connection is up and listening: notifications sent from now on arrive.
    case listening
    case notification(PostgresNotification)
    /// The connection was lost and is back, listening again. Notifications sent while it was
    /// down are lost: re-read whatever they would have announced.
    case reconnected
}

/// Listens on a fixed set of channels with one dedicated connection on its own thread.
///
/// The thread waits on the connection's socket with `poll` (with a short timeout, so `stop()`
/// takes effect promptly), reads with `PQconsumeInput` and `PQnotifies`, and delivers events
/// through `events`. A lost connection is re-opened with backoff and the channels are listened
/// to again, followed by a `.reconnected` event.
///
/// The thread keeps the listener alive: call `stop()` (or stop iterating `events`) to end it.
public final class PostgresListener: Sendable {
    public let channels: [String]
    /// The events, in order. Ends after `stop()`.
    public let events: AsyncStream<PostgresListenerEvent>

    private let configuration: PostgresConfiguration
    private let logger: Logger
    private let continuation: AsyncStream<PostgresListenerEvent>.Continuation
    private let stopped = NIOLockedValueBox(false)
    /// The backend of the current connection, for tests that kill it.
    private let currentBackendPID = NIOLockedValueBox<Int32?>(nil)

    /// How long one `poll` waits before the thread checks whether it should stop.
    private static let pollInterval: Int32 = 200

    /// Starts listening at once (on a new thread). Channel names are validated here.
    public init(
        configuration: PostgresConfiguration,
        channels: [String],
        logger: Logger = Logger(label: "vpp.postgres.listener")
    ) throws(PostgresError) {
        guard !channels.isEmpty else {
            throw PostgresError(kind: .invalidArgument, message: "a listener needs at least one channel")
        }
        for channel in channels { try validateChannelName(channel) }
        self.channels = channels
        self.configuration = configuration
        self.logger = logger
        (self.events, self.continuation) = AsyncStream.makeStream(of: PostgresListenerEvent.self)
        let thread = Thread { [self] in self.run() }
        thread.name = "vpp.postgres.listener"
        continuation.onTermination = { [stopped] _ in stopped.withLockedValue { $0 = true } }
        thread.start()
    }

    deinit { stop() }

    /// Stops listening; the thread closes the connection and `events` ends shortly after.
    public func stop() {
        stopped.withLockedValue { $0 = true }
    }

    /// The server process of the listening connection, if connected.
    public var backendPID: Int32? { currentBackendPID.withLockedValue { $0 } }

    private var isStopped: Bool { stopped.withLockedValue { $0 } }

    private func run() {
        var connection: PostgresConnection?
        var hasListened = false
        var backoff = Duration.milliseconds(100)
        defer {
            connection?.close()
            currentBackendPID.withLockedValue { $0 = nil }
            continuation.finish()
        }
        let listenSQL = channels.map { "LISTEN \((try? quoteIdentifier($0)) ?? "")" }.joined(separator: "; ")

        while !isStopped {
            guard let current = connection else {
                do {
                    let new = try PostgresConnection.connect(configuration)
                    try new.simpleQuery(listenSQL)
                    connection = new
                    currentBackendPID.withLockedValue { $0 = new.backendPID }
                    backoff = .milliseconds(100)
                    continuation.yield(hasListened ? .reconnected : .listening)
                    logger.debug(
                        hasListened ? "listener reconnected" : "listening",
                        metadata: [LogKey.channels: "\(channels)", LogKey.pid: "\(new.backendPID)"]
                    )
                    hasListened = true
                } catch {
                    logger.warning("listener could not connect", metadata: [LogKey.error: "\(error.message)"])
                    sleepUnlessStopped(backoff)
                    backoff = min(backoff * 2, .seconds(2))
                }
                continue
            }
            var descriptor = pollfd(fd: current.socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Self.pollInterval)
            if ready == 0 || (ready < 0 && errno == EINTR) { continue }
            do {
                for notification in try current.consumeNotifications() {
                    continuation.yield(.notification(notification))
                }
            } catch {
                logger.warning("listener lost its connection", metadata: [LogKey.error: "\(error.message)"])
                current.close()
                connection = nil
                currentBackendPID.withLockedValue { $0 = nil }
            }
        }
    }

    private func sleepUnlessStopped(_ duration: Duration) {
        let deadline = ContinuousClock.now + duration
        while !isStopped, ContinuousClock.now < deadline {
            usleep(20_000)
        }
    }
}
