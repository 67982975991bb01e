/// `Assignment`: one license assigned to a user (`clientUserId`) or a device (`serialNumber`).
public struct Assignment: Codable, Hashable, Sendable {
    public var adamId: String
    public var pricingParam: PricingParam
    public var clientUserId: String?
    public var serialNumber: String?
    /// Only with `includeUserState`.
    public var idHash: String?
    /// Only with `includeUserState`.
    public var userStatus: UserStatus?

    public init(
        adamId: String,
        pricingParam: PricingParam,
        clientUserId: String? = nil,
        serialNumber: String? = nil,
        idHash: String? = nil,
        userStatus: UserStatus? = nil
    ) {
        self.adamId = adamId
        self.pricingParam = pricingParam
        self.clientUserId = clientUserId
        self.serialNumber = serialNumber
        self.idHash = idHash
        self.userStatus = userStatus
    }
}

/// `GET /assignments` answer.
public struct GetAssignmentsResponse: Codable, Hashable, Sendable, AppleVPPPage {
    public var assignments: [Assignment]?
    public var currentPageIndex: Int?
    public var nextPageIndex: Int?
    public var size: Int?
    public var totalPages: Int?
    public var versionId: String?
    public var mdmInfo: MDMInfo?
    public var tokenExpirationDate: String?
    public var uId: String?

    public var items: [Assignment] { assignments ?? [] }

    public init(
        assignments: [Assignment]? = nil,
        currentPageIndex: Int? = nil,
        nextPageIndex: Int? = nil,
        size: Int? = nil,
        totalPages: Int? = nil,
        versionId: String? = nil,
        mdmInfo: MDMInfo? = nil,
        tokenExpirationDate: String? = nil,
        uId: String? = nil
    ) {
        self.assignments = assignments
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

/// `GET /assignments` query parameters (without `pageIndex` and `sinceVersionId`, which the calls take).
public struct AssignmentFilter: Hashable, Sendable {
    public var adamId: String?
    public var clientUserId: String?
    public var serialNumber: String?
    public var pricingParam: PricingParam?
    public var excludeInactiveUsers: Bool?
    /// Adds `userStatus` and `idHash` to user assignments.
    public var includeUserState: Bool?

    public init(
        adamId: String? = nil,
        clientUserId: String? = nil,
        serialNumber: String? = nil,
        pricingParam: PricingParam? = nil,
        excludeInactiveUsers: Bool? = nil,
        includeUserState: Bool? = nil
    ) {
        self.adamId = adamId
        self.clientUserId = clientUserId
        self.serialNumber = serialNumber
        self.pricingParam = pricingParam
        self.excludeInactiveUsers = excludeInactiveUsers
        self.includeUserState = includeUserState
    }

    public var queryItems: [(String, String)] {
        var items: [(String, String)] = []
        if let adamId { items.append(("adamId", adamId)) }
        if let clientUserId { items.append(("clientUserId", clientUserId)) }
        if let serialNumber { items.append(("serialNumber", serialNumber)) }
        if let pricingParam { items.append(("pricingParam", pricingParam.rawValue)) }
        if let excludeInactiveUsers { items.append(("excludeInactiveUsers", String(excludeInactiveUsers))) }
        if let includeUserState { items.append(("includeUserState", String(includeUserState))) }
        return items
    }
}
