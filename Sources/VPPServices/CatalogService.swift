import Foundation
import VPPLicensing
import VPPProto
import VPPServer
import VPPStorage

/// Apps and books per token, with their license counts (R8, R9, R11, R12).
struct CatalogService: Sendable {
    let catalog: CatalogStore

    func register(into router: inout RPCRouter) {
        typealias Catalog = VppV1.CatalogService
        router.register(Catalog.ListApps.self, requires: .tenant) { request, context in
            try await self.list(request, productType: "App", tenantID: try context.tenantID())
        }
        router.register(Catalog.ListBooks.self, requires: .tenant) { request, context in
            try await self.list(request, productType: "Book", tenantID: try context.tenantID())
        }
        router.register(Catalog.GetAsset.self, requires: .tenant) { request, context in
            VppV1.Asset(
                try await self.catalog.get(
                    tenantID: try context.tenantID(),
                    try parseID(request.assetId, field: "asset_id")
                )
            )
        }
        router.register(Catalog.GetLicenseCounts.self, requires: .tenant) { request, context in
            VppV1.LicenseCounts(
                try await self.catalog.get(
                    tenantID: try context.tenantID(),
                    try parseID(request.assetId, field: "asset_id")
                )
            )
        }
        router.register(Catalog.ListSkippedAssets.self, requires: .tenant) { request, context in
            let tokenID = request.tokenId.isEmpty ? nil : try parseID(request.tokenId, field: "token_id")
            let (assets, next) = try await self.catalog.listSkipped(
                tenantID: try context.tenantID(),
                tokenID: tokenID,
                pageSize: pageSize(request.page),
                after: try pageToken(request.page, fields: 3)
            )
            return VppV1.ListSkippedAssetsResponse(assets: assets.map(VppV1.SkippedAsset.init), page: pageInfo(next))
        }
    }

    private func list(_ request: VppV1.ListAssetsRequest, productType: String, tenantID: UUID) async throws
        -> VppV1.ListAssetsResponse
    {
        let tokenID = request.tokenId.isEmpty ? nil : try parseID(request.tokenId, field: "token_id")
        let query = request.query.trimmingCharacters(in: .whitespaces)
        let (assets, next) = try await self.catalog.list(
            tenantID: tenantID,
            productType: productType,
            tokenID: tokenID,
            query: query.isEmpty ? nil : String(query.prefix(200)),
            onlyAvailable: request.onlyAvailable,
            pageSize: pageSize(request.page),
            after: try pageToken(request.page, fields: 2)
        )
        return VppV1.ListAssetsResponse(assets: assets.map(VppV1.Asset.init), page: pageInfo(next))
    }
}

extension VppV1.LicenseCounts {
    /// Every count of one asset, from `AssetRecord.counts` (LedgerCounts): the ledger's seats and Apple's figures,
    /// each under its own name (catalog.proto defines them).
    init(_ asset: AssetRecord) {
        self.init(asset.counts)
        self.appleAssigned = UInt32(clamping: asset.assignedCount)
        self.appleAvailable = UInt32(clamping: asset.availableCount)
        self.appleRetired = UInt32(clamping: asset.retiredCount)
    }

    /// The ledger's counts alone (the change feed's COUNTS entries carry these, without Apple's own figures).
    init(_ counts: LedgerCounts) {
        self.init()
        self.unlimited = counts.unlimited
        // Free apps: Apple reports 2147483647; no arithmetic is done on it.
        self.total = UInt32(clamping: counts.total)
        self.inUse = UInt32(clamping: counts.inUse)
        self.available = UInt32(clamping: counts.available ?? counts.total)
        self.reserved = UInt32(clamping: counts.reserved)
        self.waiting = UInt32(clamping: counts.waiting)
        self.heldElsewhere = UInt32(clamping: counts.heldElsewhere)
        self.overAssigned = UInt32(clamping: counts.overAssigned)
    }
}

extension VppV1.Asset {
    init(_ record: AssetRecord) {
        self.init()
        self.id = record.id.lowercasedText
        self.tokenId = record.tokenID.lowercasedText
        self.adamId = record.adamID
        self.pricingParam = VppV1.PricingParam(apple: record.pricingParam)
        self.productType = VppV1.ProductType(apple: record.productType)
        self.name = record.name
        self.bundleId = record.bundleID
        self.platforms = record.platforms
        self.deviceAssignable = record.deviceAssignable
        self.revocable = record.revocable
        self.counts = VppV1.LicenseCounts(record)
        self.syncedAt = VppV1.Timestamp(record.syncedAt)
        self.artworkUrl = record.artworkURL
    }
}

extension VppV1.SkippedAsset {
    init(_ record: SkippedAssetRecord) {
        self.init()
        self.tokenId = record.tokenID.lowercasedText
        self.adamId = record.adamID
        self.pricingParam = VppV1.PricingParam(apple: record.pricingParam)
        self.productType = VppV1.ProductType(apple: record.productType)
        self.reason = record.reason
        self.total = UInt32(clamping: record.totalCount)
        self.seenAt = VppV1.Timestamp(record.seenAt)
    }
}

extension VppV1.PricingParam {
    init(apple: String) {
        switch apple {
        case "STDQ": self = .stdq
        case "PLUS": self = .plus
        default: self = .unspecified
        }
    }
}

extension VppV1.ProductType {
    init(apple: String) {
        switch apple {
        case "App": self = .app
        case "Book": self = .book
        default: self = .unspecified
        }
    }
}
