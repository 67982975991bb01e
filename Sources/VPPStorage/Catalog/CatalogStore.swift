public import Foundation
public import VPPLicensing
import VPPPostgres

/// An app or book bought with one token (R8, R11, R12), with Apple's counts as of the last sync. Only storage makes
/// them (from rows), with the memberwise initialiser.
public struct AssetRecord: Sendable, Hashable {
    public var id: UUID
    public var tokenID: UUID
    public var adamID: String
    public var pricingParam: String
    /// "App" or "Book", as Apple names them.
    public var productType: String
    public var name: String
    public var bundleID: String
    public var artworkURL: String
    public var platforms: [String]
    public var deviceAssignable: Bool
    public var revocable: Bool
    public var unlimited: Bool
    public var totalCount: Int
    public var assignedCount: Int
    public var availableCount: Int
    public var retiredCount: Int
    public var syncedAt: Date
    /// Seats others hold at Apple (another MDM, Apple Business Manager), as of the last full sync.
    public var foreignAssigned: Int = 0
    /// The ledger's seats of this asset: held here (reserved included), reserved, and targets waiting.
    public var held = 0
    public var reserved = 0
    public var waiting = 0

    /// Every count an RPC returns for this asset, from one place (R8, R15).
    public var counts: LedgerCounts {
        LedgerCounts(
            total: self.totalCount,
            unlimited: self.unlimited,
            heldElsewhere: self.foreignAssigned,
            held: self.held,
            reserved: self.reserved,
            waiting: self.waiting
        )
    }
}

/// R9: a custom B2B app the sync skipped, and why.
public struct SkippedAssetRecord: Sendable, Hashable {
    public var tokenID: UUID
    public var adamID: String
    public var pricingParam: String
    public var productType: String
    public var reason: String
    public var totalCount: Int
    public var seenAt: Date

    public init(
        tokenID: UUID,
        adamID: String,
        pricingParam: String,
        productType: String,
        reason: String,
        totalCount: Int,
        seenAt: Date
    ) {
        self.tokenID = tokenID
        self.adamID = adamID
        self.pricingParam = pricingParam
        self.productType = productType
        self.reason = reason
        self.totalCount = totalCount
        self.seenAt = seenAt
    }
}

/// Reads the catalog of a tenant: its tokens' apps and books.
public struct CatalogStore: Sendable {
    let storage: Storage

    public init(storage: Storage) {
        self.storage = storage
    }

    static let columns = """
        a.id, a.token_id, a.adam_id, a.pricing_param, a.product_type, a.name, a.bundle_id, a.artwork_url, a.platforms,
        a.device_assignable, a.revocable, a.unlimited, a.total_count, a.assigned_count, a.available_count,
        a.retired_count, a.synced_at, a.foreign_assigned, c.held, c.reserved, c.waiting
        """

    /// The ledger's counts of asset `a` (columns `c.held`, `c.reserved`, `c.waiting`), selected LATERAL over the
    /// tenant's `licenses l`: the one place every RPC's counts come from (with the asset's own columns,
    /// `AssetRecord.counts`). Written `CROSS JOIN LATERAL (SELECT <this> FROM licenses l WHERE l.asset_id = a.id) c`.
    static let ledgerCountColumns = """
        count(*) FILTER (WHERE l.state IN \(LicenseState.sqlList(LicenseState.seatHolding)))::bigint AS held,
        count(*) FILTER (WHERE l.state = 'reserved')::bigint AS reserved,
        count(*) FILTER (WHERE l.state = 'waiting')::bigint AS waiting
        """

    static func decode(_ row: PostgresRow) throws -> AssetRecord {
        AssetRecord(
            id: try row.decode(UUID.self, at: 0),
            tokenID: try row.decode(UUID.self, at: 1),
            adamID: try row.decode(String.self, at: 2),
            pricingParam: try row.decode(String.self, at: 3),
            productType: try row.decode(String.self, at: 4),
            name: try row.decode(String.self, at: 5),
            bundleID: try row.decode(String.self, at: 6),
            artworkURL: try row.decode(String.self, at: 7),
            platforms: try row.decode([String].self, at: 8),
            deviceAssignable: try row.decode(Bool.self, at: 9),
            revocable: try row.decode(Bool.self, at: 10),
            unlimited: try row.decode(Bool.self, at: 11),
            totalCount: try row.decode(Int.self, at: 12),
            assignedCount: try row.decode(Int.self, at: 13),
            availableCount: try row.decode(Int.self, at: 14),
            retiredCount: try row.decode(Int.self, at: 15),
            syncedAt: try row.decode(Date.self, at: 16),
            foreignAssigned: try row.decode(Int.self, at: 17),
            held: try row.decode(Int.self, at: 18),
            reserved: try row.decode(Int.self, at: 19),
            waiting: try row.decode(Int.self, at: 20)
        )
    }

    /// One page of apps or books (`productType` "App" or "Book"), in the order they were first synced.
    /// - Parameters:
    ///   - tokenID: only this token's; nil for every token (R11: an app of two tokens is listed twice).
    ///   - query: a case-insensitive substring of the name, or an exact adam id.
    ///   - onlyAvailable: only assets with licenses left, or unlimited ones.
    public func list(
        tenantID: UUID,
        productType: String,
        tokenID: UUID?,
        query: String?,
        onlyAvailable: Bool,
        pageSize: Int,
        after token: PageToken?
    ) async throws -> (assets: [AssetRecord], next: PageToken?) {
        let cursor = try CreationCursor(token)
        let pattern = query.map { "%" + TenantStore.escapeLike($0) + "%" }
        return try await self.storage.withTenant(tenantID) { transaction in
            if let tokenID {
                let exists = try await transaction.query("SELECT 1 FROM tokens WHERE id = \(tokenID)")
                guard !exists.isEmpty else { throw TokenStore.notFound(tokenID) }
            }
            let rows = try await transaction.query(
                """
                SELECT \(unescaped: Self.columns), (extract(epoch FROM a.created_at) * 1000000)::bigint
                FROM assets a
                CROSS JOIN LATERAL (SELECT \(unescaped: Self.ledgerCountColumns) FROM licenses l WHERE l.asset_id = a.id) c
                WHERE a.product_type = \(productType)
                  AND (\(tokenID)::uuid IS NULL OR a.token_id = \(tokenID))
                  AND (\(pattern)::text IS NULL OR a.name ILIKE \(pattern) ESCAPE '\\' OR a.adam_id = \(query))
                  AND (NOT \(onlyAvailable) OR a.unlimited OR a.total_count - a.foreign_assigned - c.held > 0)
                  AND (\(cursor?.id)::uuid IS NULL
                       OR (a.created_at, a.id) > ('epoch'::timestamptz + \(cursor?.micros)::bigint * interval '1 microsecond',
                                                 \(cursor?.id)::uuid))
                ORDER BY a.created_at, a.id
                LIMIT \(pageSize + 1)
                """
            )
            let page = try CreationCursor.page(rows, pageSize: pageSize, decode: Self.decode, id: \.id)
            return (page.items, page.next)
        }
    }

    /// One asset (GetAsset, GetLicenseCounts): one statement, so it goes to the database in one round trip.
    public func get(tenantID: UUID, _ assetID: UUID) async throws -> AssetRecord {
        let rows = try await self.storage.readInTenant(tenantID) { schema in
            """
            SELECT \(unescaped: Self.columns) FROM \(identifier: schema).assets a
            CROSS JOIN LATERAL (
                SELECT \(unescaped: Self.ledgerCountColumns) FROM \(identifier: schema).licenses l WHERE l.asset_id = a.id
            ) c
            WHERE a.id = \(assetID)
            """
        }
        guard let row = rows.first else {
            throw StorageError.notFound("No app or book with id \(assetID.lowercasedText).")
        }
        return try Self.decode(row)
    }

    /// R9: the skipped custom apps, by token and adam id. The page token is the last row's (token, adam id, pricing).
    public func listSkipped(
        tenantID: UUID,
        tokenID: UUID?,
        pageSize: Int,
        after token: PageToken?
    ) async throws -> (assets: [SkippedAssetRecord], next: PageToken?) {
        var after: (UUID, String, String)?
        if let token {
            guard token.values.count == 3, let id = UUID(canonicalText: token.values[0]) else {
                throw StorageError.invalidArgument(
                    "page_token is not a token this server issued.",
                    field: "page.page_token"
                )
            }
            after = (id, token.values[1], token.values[2])
        }
        return try await self.storage.withTenant(tenantID) { transaction in
            let rows = try await transaction.query(
                """
                SELECT token_id, adam_id, pricing_param, product_type, reason, total_count, seen_at
                FROM skipped_assets
                WHERE (\(tokenID)::uuid IS NULL OR token_id = \(tokenID))
                  AND (\(after?.0)::uuid IS NULL OR (token_id, adam_id, pricing_param) > (\(after?.0), \(after?.1), \(after?.2)))
                ORDER BY token_id, adam_id, pricing_param
                LIMIT \(pageSize + 1)
                """
            )
            let items = try rows.prefix(pageSize).map { row in
                SkippedAssetRecord(
                    tokenID: try row.decode(UUID.self, at: 0),
                    adamID: try row.decode(String.self, at: 1),
                    pricingParam: try row.decode(String.self, at: 2),
                    productType: try row.decode(String.self, at: 3),
                    reason: try row.decode(String.self, at: 4),
                    totalCount: try row.decode(Int.self, at: 5),
                    seenAt: try row.decode(Date.self, at: 6)
                )
            }
            guard rows.count > pageSize, let last = items.last else { return (items, nil) }
            return (items, PageToken([last.tokenID.uuidString, last.adamID, last.pricingParam]))
        }
    }
}
