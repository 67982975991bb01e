/// `ResponseAsset`: an owned asset and its license counts.
public struct ResponseAsset: Codable, Hashable, Sendable {
    public var adamId: String
    public var pricingParam: PricingParam
    public var productType: ProductType
    public var assignedCount: Int
    public var availableCount: Int
    public var retiredCount: Int
    /// `2147483647` for an unlimited (free) asset when the request did not filter on `unlimited`: not a count.
    public var totalCount: Int
    public var deviceAssignable: Bool
    public var revocable: Bool
    public var supportedPlatforms: [String]?

    public init(
        adamId: String,
        pricingParam: PricingParam,
        productType: ProductType,
        assignedCount: Int,
        availableCount: Int,
        retiredCount: Int,
        totalCount: Int,
        deviceAssignable: Bool,
        revocable: Bool,
        supportedPlatforms: [String]? = nil
    ) {
        self.adamId = adamId
        self.pricingParam = pricingParam
        self.productType = productType
        self.assignedCount = assignedCount
        self.availableCount = availableCount
        self.retiredCount = retiredCount
        self.totalCount = totalCount
        self.deviceAssignable = deviceAssignable
        self.revocable = revocable
        self.supportedPlatforms = supportedPlatforms
    }

    /// Apple's marker for an unlimited asset's `totalCount`.
    public static let unlimitedTotalCount = 2_147_483_647
    /// Whether this is an unlimited (free) asset; never do arithmetic on its counts.
    public var isUnlimited: Bool { totalCount == Self.unlimitedTotalCount }
}

/// `UnlimitedResponseAsset`: an unlimited asset in `unlimitedAssets[]` (no available, total or retired counts).
public struct UnlimitedResponseAsset: Codable, Hashable, Sendable {
    public var adamId: String
    public var pricingParam: PricingParam
    public var productType: ProductType
    public var assignedCount: Int?
    public var deviceAssignable: Bool
    public var revocable: Bool
    public var supportedPlatforms: [String]?

    public init(
        adamId: String,
        pricingParam: PricingParam,
        productType: ProductType,
        assignedCount: Int?,
        deviceAssignable: Bool,
        revocable: Bool,
        supportedPlatforms: [String]? = nil
    ) {
        self.adamId = adamId
        self.pricingParam = pricingParam
        self.productType = productType
        self.assignedCount = assignedCount
        self.deviceAssignable = deviceAssignable
        self.revocable = revocable
        self.supportedPlatforms = supportedPlatforms
    }
}

/// `GET /assets` answer.
public struct GetAssetsResponse: Codable, Hashable, Sendable, AppleVPPPage {
    public var assets: [ResponseAsset]?
    public var unlimitedAssets: [UnlimitedResponseAsset]?
    public var currentPageIndex: Int?
    public var nextPageIndex: Int?
    public var size: Int?
    public var totalPages: Int?
    public var versionId: String?
    public var mdmInfo: MDMInfo?
    public var tokenExpirationDate: String?
    public var uId: String?

    public var items: [ResponseAsset] { assets ?? [] }

    public init(
        assets: [ResponseAsset]? = nil,
        unlimitedAssets: [UnlimitedResponseAsset]? = nil,
        currentPageIndex: Int? = nil,
        nextPageIndex: Int? = nil,
        size: Int? = nil,
        totalPages: Int? = nil,
        versionId: String? = nil,
        mdmInfo: MDMInfo? = nil,
        tokenExpirationDate: String? = nil,
        uId: String? = nil
    ) {
        self.assets = assets
        self.unlimitedAssets = unlimitedAssets
        self.currentPageIndex = currentPageIndex
        self.nextPageIndex = nextPageIndex
        self.size = size
        self.totalPages = totalPages
        self.versionId = versionId
        self.mdmInfo = mdmInfo
        self.tokenExpirationDate = tokenExpirationDate
        self.uId = uId
    }
}

/// `GET /assets` query parameters; `nil` leaves a filter out.
public struct AssetFilter: Hashable, Sendable {
    public var productType: ProductType?
    public var pricingParam: PricingParam?
    public var revocable: Bool?
    public var deviceAssignable: Bool?
    public var maxAvailableCount: Int?
    public var minAvailableCount: Int?
    public var maxAssignedCount: Int?
    public var minAssignedCount: Int?
    public var adamId: String?
    /// `true`: unlimited assets only, in `unlimitedAssets`; `false`: none; `nil`: mixed in, `totalCount` 2147483647.
    public var unlimited: Bool?

    public init(
        productType: ProductType? = nil,
        pricingParam: PricingParam? = nil,
        revocable: Bool? = nil,
        deviceAssignable: Bool? = nil,
        maxAvailableCount: Int? = nil,
        minAvailableCount: Int? = nil,
        maxAssignedCount: Int? = nil,
        minAssignedCount: Int? = nil,
        adamId: String? = nil,
        unlimited: Bool? = nil
    ) {
        self.productType = productType
        self.pricingParam = pricingParam
        self.revocable = revocable
        self.deviceAssignable = deviceAssignable
        self.maxAvailableCount = maxAvailableCount
        self.minAvailableCount = minAvailableCount
        self.maxAssignedCount = maxAssignedCount
        self.minAssignedCount = minAssignedCount
        self.adamId = adamId
        self.unlimited = unlimited
    }

    public var queryItems: [(String, String)] {
        var items: [(String, String)] = []
        if let productType { items.append(("productType", productType.rawValue)) }
        if let pricingParam { items.append(("pricingParam", pricingParam.rawValue)) }
        if let revocable { items.append(("revocable", String(revocable))) }
        if let deviceAssignable { items.append(("deviceAssignable", String(deviceAssignable))) }
        if let maxAvailableCount { items.append(("maxAvailableCount", String(maxAvailableCount))) }
        if let minAvailableCount { items.append(("minAvailableCount", String(minAvailableCount))) }
        if let maxAssignedCount { items.append(("maxAssignedCount", String(maxAssignedCount))) }
        if let minAssignedCount { items.append(("minAssignedCount", String(minAssignedCount))) }
        if let adamId { items.append(("adamId", adamId)) }
        if let unlimited { items.append(("unlimited", String(unlimited))) }
        return items
    }
}

/// `POST /assets/associate` and `/assets/disassociate` body (Apple's `ManageAssetsRequest`).
public struct ManageAssetsRequest: Codable, Hashable, Sendable {
    public var assets: [AssetReference]
    public var clientUserIds: [String]?
    public var serialNumbers: [String]?

    public init(assets: [AssetReference], clientUserIds: [String]? = nil, serialNumbers: [String]? = nil) {
        self.assets = assets
        self.clientUserIds = clientUserIds
        self.serialNumbers = serialNumbers
    }
}

/// `POST /assets/revoke` body: revokes every revocable asset of these users and devices.
public struct RevokeAssetsRequest: Codable, Hashable, Sendable {
    public var clientUserIds: [String]?
    public var serialNumbers: [String]?

    public init(clientUserIds: [String]? = nil, serialNumbers: [String]? = nil) {
        self.clientUserIds = clientUserIds
        self.serialNumbers = serialNumbers
    }
}
