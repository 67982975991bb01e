import Foundation
public import Logging
public import ServiceLifecycle
import VPPJobs
import VPPPush
public import VPPPostgres
public import VPPStorage

/// Listens for changes other servers announce (a key revoked, a tenant suspended or deleted) and drops what this
/// process cached about them, so that every server sees the change on the next call. It also relays job progress
/// (`JobQueue.progressChannel`) to the streams that watch jobs, and commits that wrote changes (`ChangeLog.channel`)
/// to the change feed's streams.
public final class ChangeListener: Service, Sendable {
    private let configuration: PostgresConfiguration
    private let storage: Storage
    private let authenticator: StorageAuthenticator
    private let jobProgress: JobProgressHub?
    private let changeFeed: ChangeFeedHub?
    private let logger: Logger

    public init(
        configuration: PostgresConfiguration,
        storage: Storage,
        authenticator: StorageAuthenticator,
        jobProgress: JobProgressHub? = nil,
        changeFeed: ChangeFeedHub? = nil,
        logger: Logger
    ) {
        self.changeFeed = changeFeed
        self.configuration = configuration
        self.storage = storage
        self.authenticator = authenticator
        self.jobProgress = jobProgress
        self.logger = logger
    }

    public func run() async throws {
        var channels = [Storage.changesChannel]
        if self.jobProgress != nil { channels += [JobQueue.progressChannel, Storage.appleEventsChannel] }
        if self.changeFeed != nil { channels.append(ChangeLog.channel) }
        let listener = try PostgresListener(configuration: self.configuration, channels: channels, logger: self.logger)
        await withGracefulShutdownHandler {
            for await event in listener.events {
                switch event {
                case .listening:
                    self.logger.debug("Listening for changes from other servers")
                case .reconnected:
                    // Notifications may have been missed while the connection was down.
                    self.authenticator.forgetAll()
                    self.storage.forgetAllTenants()
                    self.jobProgress?.signalAll()
                    self.changeFeed?.signalAll()
                case .notification(let notification) where notification.channel == JobQueue.progressChannel:
                    self.jobProgress?.signal(notification.payload.lowercased())
                case .notification(let notification) where notification.channel == ChangeLog.channel:
                    // Issue 19: a transaction that wrote changes in this tenant committed (at any server).
                    if let tenantID = TenantSchema.tenantID(fromSchemaName: notification.payload) {
                        self.changeFeed?.signal(tenantID: tenantID)
                    }
                case .notification(let notification) where notification.channel == Storage.appleEventsChannel:
                    // Issue 18: a notification about one of Apple's events arrived (at any server).
                    self.jobProgress?.signal(EventSignalsKey.event(notification.payload))
                case .notification(let notification):
                    self.apply(notification.payload)
                }
            }
        } onGracefulShutdown: {
            listener.stop()
        }
    }

    private func apply(_ payload: String) {
        let parts = payload.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let id = UUID(canonicalText: parts[1]) else { return }
        switch parts[0] {
        case "key": self.authenticator.forgetKey(id)
        case "tenant": self.storage.forgetTenant(id)
        default: break
        }
    }
}
