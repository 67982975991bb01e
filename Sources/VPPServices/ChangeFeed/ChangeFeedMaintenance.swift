public import Foundation
public import Logging
public import ServiceLifecycle
public import VPPClock
import VPPLogKeys
public import VPPStorage

/// Keeps every tenant's change log (issue 19): prunes what is older than the retention (readers behind it are told,
/// never skipped), and writes the derived TOKEN_EXPIRING entries for tokens 30, 14 or 7 days from expiry. Every
/// server may run it: pruning and the warnings are idempotent (a warning is written once per threshold).
public final class ChangeFeedMaintenance: Service, Sendable {
    let storage: Storage
    let retention: Duration
    let interval: Duration
    let clock: InstantClock
    let logger: Logger

    public init(
        storage: Storage,
        retention: Duration,
        interval: Duration,
        clock: InstantClock = .continuous,
        logger: Logger
    ) {
        self.storage = storage
        self.retention = retention
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.runOnce(now: Date())
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning(
                        "Change feed maintenance failed; will try again",
                        metadata: [LogKey.error: "\(error)"]
                    )
                }
                try? await self.clock.sleep(for: self.interval)
            }
        }
    }

    /// One round over every active tenant. Returns the changes pruned and the tokens warned.
    @discardableResult
    public func runOnce(now: Date) async throws -> (pruned: Int, warned: Int) {
        let cutoff = now.addingTimeInterval(-Double(self.retention.components.seconds))
        var pruned = 0
        var warned = 0
        for tenantID in try await self.storage.tenants.activeIDs() {
            try Task.checkCancellation()
            do {
                pruned += try await self.storage.changeLog.prune(tenantID: tenantID, olderThan: cutoff)
                warned += try await self.storage.changeLog.warnExpiringTokens(tenantID: tenantID, now: now)
            } catch let error as StorageError {
                // Deleted or suspended since the list was read: nothing to keep.
                self.logger.debug("Skipped a tenant's change log", metadata: [LogKey.error: "\(error)"])
            }
        }
        if pruned > 0 || warned > 0 {
            self.logger.info(
                "Change feed maintained",
                metadata: [LogKey.count: "\(pruned)", LogKey.tokensWarned: "\(warned)"]
            )
        }
        return (pruned, warned)
    }
}
