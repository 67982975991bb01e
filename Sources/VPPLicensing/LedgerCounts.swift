/// Every license count an RPC returns for one asset, computed in one place from the ledger and Apple's figures
/// (R8, R15). `LicenseCounts` (catalog.proto) carries these; docs/licenses.md defines them.
public struct LedgerCounts: Sendable, Hashable {
    /// R8: bought at Apple (`totalCount`).
    public var total: Int
    /// Free apps: no limit (Apple reports `total` as 2147483647; no arithmetic is done on it).
    public var unlimited: Bool
    /// Seats others hold at Apple (another MDM, Apple Business Manager), as of the last full sync.
    public var heldElsewhere: Int
    /// Seats this service holds, confirmed or not (`LicenseState.holdsSeat`).
    public var held: Int
    /// Of `held`: not yet confirmed by Apple.
    public var reserved: Int
    /// R15: targets in line.
    public var waiting: Int

    public init(total: Int, unlimited: Bool, heldElsewhere: Int, held: Int, reserved: Int, waiting: Int) {
        self.total = total
        self.unlimited = unlimited
        self.heldElsewhere = heldElsewhere
        self.held = held
        self.reserved = reserved
        self.waiting = waiting
    }

    /// Seats counted against `total`: held here (reserved included) plus held elsewhere.
    public var inUse: Int { self.held + self.heldElsewhere }

    /// Seats left to hand out: `total − inUse`, never below zero (nil: unlimited). The ledger hands out exactly
    /// these (R15); a refund can leave `inUse` above `total`, and then `overAssigned` says by how much.
    public var available: Int? { self.unlimited ? nil : max(0, self.total - self.inUse) }

    /// Seats held beyond what was bought (after a refund or a transfer at Apple): they are not revoked by this
    /// service on its own; nobody new gets a seat until they are given back.
    public var overAssigned: Int { self.unlimited ? 0 : max(0, self.inUse - self.total) }
}
