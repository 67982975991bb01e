public import Foundation
public import Logging
import VPPLogKeys
public import VPPStorage

/// Makes licenses follow the directory without the tenant asking: after users, devices or memberships change, every
/// assigned asset's targets are derived again, waiters served, seats of targets no longer reached taken back, and the
/// tokens whose outbox gained rows get a push.
public struct LedgerDirectoryObserver: DirectoryObserver {
    let ledger: LicenseLedger
    let syncs: SyncJobs
    let logger: Logger

    public init(ledger: LicenseLedger, syncs: SyncJobs, logger: Logger) {
        self.ledger = ledger
        self.syncs = syncs
        self.logger = logger
    }

    public func directoryChanged(tenantID: UUID) async {
        do {
            try await self.ledger.reconcileAll(tenantID: tenantID)
            try await self.syncs.pushPending(ledger: self.ledger, tenantID: tenantID)
        } catch {
            // The next directory change or sync reconciles again; the outbox sweep sends what was written.
            self.logger.warning(
                "Licenses did not follow a directory change yet",
                metadata: [LogKey.tenantID: "\(tenantID)", LogKey.error: "\(error)"]
            )
        }
    }
}
