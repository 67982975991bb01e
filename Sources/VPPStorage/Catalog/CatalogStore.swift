public import Foundation
import VPPPostgres

/// An app or book bought with one token (R8, R11, R12), with Apple's counts as of the last sync.
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

    public init(
        id: UUID, tokenID: UUID, adamID: String, pricingParam: String, productType: String, name: String,
        bundleID: String, artworkURL: String, platforms: [String], deviceAssignable: Bool, revocable: Bool,
        unlimited: Bool, totalCount: Int, assignedCount: Int, availableCount: Int, retiredCount: Int, syncedAt: Date
    ) {
        self.id = id
        self.tokenID = tokenID
        self.adamID = adamID
        self.pricingParam = pricingParam
        self.productType = productType
        self.name = name
        self.bundleID = bundleID
        self.artworkURL = artworkURL
        self.platforms = platforms
        self.deviceAssignable = deviceAssignable
        self.revocable = revocable
        self.unlimited = unlimited
        self.totalCount = totalCount
        self.assignedCount = assignedCount
        self.availableCount = availableCount
        self.retiredCount = retiredCount
        self.syncedAt = syncedAt
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
        tokenID: UUID, adamID: String, pricingParam: String, productType: String, reason: String, totalCount: Int,
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
        id, token_id, adam_id, pricing_param, product_type, name, bundle_id, artwork_url, platforms, device_assignable,
        revocable, unlimited, total_count, assigned_count, available_count, retired_count, synced_at, foreign_assigned
        """

    static func decode(_ row: PostgresRow) throws -> AssetRecord {
        var record = AssetRecord(
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
            syncedAt: try row.decode(Date.self, at: 16)
        )
        record.foreignAssigned = try row.decode(Int.self, at: 17)
        return record
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
                SELECT \(unescaped: Self.columns), \(unescaped: CreationCursor.microsColumn)
                FROM assets
                WHERE product_type = \(productType)
                  AND (\(tokenID)::uuid IS NULL OR token_id = \(tokenID))
                  AND (\(pattern)::text IS NULL OR name ILIKE \(pattern) ESCAPE '\\' OR adam_id = \(query))
                  AND (NOT \(onlyAvailable) OR unlimited OR available_count > 0)
                  AND (\(cursor?.id)::uuid IS NULL
                       OR (created_at, id) > ('epoch'::timestamptz + \(cursor?.micros)::bigint * interval '1 microsecond',
                                             \(cursor?.id)::uuid))
                ORDER BY created_at, id
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
            "SELECT \(unescaped: Self.columns) FROM \(identifier: schema).assets WHERE id = \(assetID)"
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
                throw StorageError.invalidArgument("page_token is not a token this server issued.", field: "page.page_token")
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
