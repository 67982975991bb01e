public import Foundation

/// Told when a tenant's directory changed in a way that can change who should hold a license (users, devices, group
/// membership), after the change committed, so licenses follow without the tenant asking. The license ledger
/// implements it; the default does nothing.
public protocol DirectoryObserver: Sendable {
    func directoryChanged(tenantID: UUID) async
}

public struct NoDirectoryObserver: DirectoryObserver {
    public init() {}
    public func directoryChanged(tenantID: UUID) async {}
}
