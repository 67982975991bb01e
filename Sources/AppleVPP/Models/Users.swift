/// `ResponseUser`.
public struct ResponseUser: Codable, Hashable, Sendable {
    public var clientUserId: String
    public var email: String?
    /// Present once an Apple Account is associated.
    public var idHash: String?
    /// Present while the user is `Registered`.
    public var inviteCode: String?
    public var status: UserStatus

    public init(
        clientUserId: String,
        email: String? = nil,
        idHash: String? = nil,
        inviteCode: String? = nil,
        status: UserStatus
    ) {
        self.clientUserId = clientUserId
        self.email = email
        self.idHash = idHash
        self.inviteCode = inviteCode
        self.status = status
    }
}

/// `GET /users` answer.
public struct GetUsersResponse: Codable, Hashable, Sendable, AppleVPPPage {
    public var users: [ResponseUser]?
    public var currentPageIndex: Int?
    public var nextPageIndex: Int?
    public var size: Int?
    public var totalPages: Int?
    public var versionId: String?
    public var mdmInfo: MDMInfo?
    public var tokenExpirationDate: String?
    public var uId: String?

    public var items: [ResponseUser] { users ?? [] }

    public init(
        users: [ResponseUser]? = nil,
        currentPageIndex: Int? = nil,
        nextPageIndex: Int? = nil,
        size: Int? = nil,
        totalPages: Int? = nil,
        versionId: String? = nil,
        mdmInfo: MDMInfo? = nil,
        tokenExpirationDate: String? = nil,
        uId: String? = nil
    ) {
        self.users = users
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

/// `GET /users` query parameters (without `pageIndex` and `sinceVersionId`).
public struct UserFilter: Hashable, Sendable {
    public var activeOnly: Bool?
    public var retiredOnly: Bool?
    public var clientUserId: String?

    public init(activeOnly: Bool? = nil, retiredOnly: Bool? = nil, clientUserId: String? = nil) {
        self.activeOnly = activeOnly
        self.retiredOnly = retiredOnly
        self.clientUserId = clientUserId
    }

    public var queryItems: [(String, String)] {
        var items: [(String, String)] = []
        if let activeOnly { items.append(("activeOnly", String(activeOnly))) }
        if let retiredOnly { items.append(("retiredOnly", String(retiredOnly))) }
        if let clientUserId { items.append(("clientUserId", clientUserId)) }
        return items
    }
}

/// `RequestUser`: `clientUserId` is required; retire needs nothing else.
public struct RequestUser: Codable, Hashable, Sendable {
    public var clientUserId: String
    public var email: String?
    public var managedAppleId: String?

    public init(clientUserId: String, email: String? = nil, managedAppleId: String? = nil) {
        self.clientUserId = clientUserId
        self.email = email
        self.managedAppleId = managedAppleId
    }
}

/// `POST /users/create|update|retire` body.
public struct ManageUsersRequest: Codable, Hashable, Sendable {
    public var users: [RequestUser]
    public init(users: [RequestUser]) { self.users = users }
}
