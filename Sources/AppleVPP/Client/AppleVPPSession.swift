import AsyncHTTPClient
import Foundation
import NIOHTTP1

/// The calls of one token. A value type: cheap to make per job; the shared state lives in `AppleVPPClient`.
public struct AppleVPPSession: Sendable {
    public let client: AppleVPPClient
    public let token: ServiceToken
    /// The `mdmInfo` this server set; responses are compared with it.
    public let ownMDMInfo: MDMInfo?
    let onMDMInfoMismatch: (@Sendable (MDMInfo?) -> Void)?

    init(
        client: AppleVPPClient,
        token: ServiceToken,
        ownMDMInfo: MDMInfo?,
        onMDMInfoMismatch: (@Sendable (MDMInfo?) -> Void)?
    ) {
        self.client = client
        self.token = token
        self.ownMDMInfo = ownMDMInfo
        self.onMDMInfoMismatch = onMDMInfoMismatch
    }

    /// Whether `observed` (a response's `mdmInfo`) is someone else: compared by `id`, the stable identity of an MDM
    /// installation (its `name` and `metadata` change with versions).
    public static func isForeign(_ observed: MDMInfo?, own: MDMInfo) -> Bool {
        observed?.id != own.id
    }

    // MARK: Client config

    /// `GET /client/config`: validates the token and tells the location, storefront and current `mdmInfo`.
    public func clientConfig() async throws -> ClientConfigResponse {
        try await get(ServiceURLKey.clientConfig, "/client/config", as: ClientConfigResponse.self)
    }

    /// `POST /client/config`.
    public func setClientConfig(_ request: ClientConfigRequest) async throws -> ClientConfigResponse {
        try await post(ServiceURLKey.clientConfig, "/client/config", body: request, as: ClientConfigResponse.self)
    }

    /// Claims the token for this MDM (`POST /client/config` with `mdmInfo`). Check `clientConfig().mdmInfo` first:
    /// taking a token over from another MDM needs an administrator's consent.
    public func claim(_ mdmInfo: MDMInfo) async throws -> ClientConfigResponse {
        try await setClientConfig(ClientConfigRequest(mdmInfo: mdmInfo))
    }

    // MARK: Assets and assignments

    /// One page of `GET /assets`; `pageIndex` nil for the first.
    public func assets(filter: AssetFilter = .init(), pageIndex: Int? = nil) async throws -> GetAssetsResponse {
        var query = filter.queryItems
        if let pageIndex { query.append(("pageIndex", String(pageIndex))) }
        return try await get(ServiceURLKey.getAssets, "/assets", query: query, as: GetAssetsResponse.self)
    }

    /// Every page of `GET /assets`.
    public func allAssets(filter: AssetFilter = .init()) async throws -> PagedResult<ResponseAsset> {
        try await allPages { try await assets(filter: filter, pageIndex: $0) }
    }

    /// One page of `GET /assignments`; `sinceVersionId` for the changes since an earlier read.
    public func assignments(
        filter: AssignmentFilter = .init(),
        sinceVersionId: String? = nil,
        pageIndex: Int? = nil
    ) async throws -> GetAssignmentsResponse {
        var query = filter.queryItems
        if let sinceVersionId { query.append(("sinceVersionId", sinceVersionId)) }
        if let pageIndex { query.append(("pageIndex", String(pageIndex))) }
        return try await get(
            ServiceURLKey.getAssignments,
            "/assignments",
            query: query,
            as: GetAssignmentsResponse.self
        )
    }

    /// Every page of `GET /assignments` (pages after the first in parallel, at most five at once).
    /// Every page of `GET /assignments`. `progress` hears (items read, items expected: the pages Apple announced
    /// times the first page's size) after each page.
    public func allAssignments(
        filter: AssignmentFilter = .init(),
        sinceVersionId: String? = nil,
        progress: (@Sendable (_ read: Int, _ expected: Int) async -> Void)? = nil
    ) async throws -> PagedResult<Assignment> {
        try await allPages(progress: progress) {
            try await assignments(filter: filter, sinceVersionId: sinceVersionId, pageIndex: $0)
        }
    }

    /// `POST /assets/associate` with one request as given (see `associateInBatches` for any size).
    public func associate(_ request: ManageAssetsRequest) async throws -> EventResponse {
        try await post(ServiceURLKey.associateAssets, "/assets/associate", body: request, as: EventResponse.self)
    }

    /// `POST /assets/disassociate` with one request as given.
    public func disassociate(_ request: ManageAssetsRequest) async throws -> EventResponse {
        try await post(ServiceURLKey.disassociateAssets, "/assets/disassociate", body: request, as: EventResponse.self)
    }

    /// `POST /assets/revoke` with one request as given.
    public func revoke(_ request: RevokeAssetsRequest) async throws -> EventResponse {
        try await post(ServiceURLKey.revokeAssets, "/assets/revoke", body: request, as: EventResponse.self)
    }

    /// Associates assets with users and devices in as many requests as the service-config limits require.
    public func associateInBatches(
        assets: [AssetReference],
        clientUserIds: [String] = [],
        serialNumbers: [String] = []
    ) async throws -> [EventResponse] {
        try await manageInBatches(assets, clientUserIds, serialNumbers) { try await associate($0) }
    }

    /// Disassociates in as many requests as the limits require.
    public func disassociateInBatches(
        assets: [AssetReference],
        clientUserIds: [String] = [],
        serialNumbers: [String] = []
    ) async throws -> [EventResponse] {
        try await manageInBatches(assets, clientUserIds, serialNumbers) { try await disassociate($0) }
    }

    /// Cuts an association or disassociation into the requests the service config's limits allow, and sends them.
    private func manageInBatches(
        _ assets: [AssetReference],
        _ clientUserIds: [String],
        _ serialNumbers: [String],
        _ send: (ManageAssetsRequest) async throws -> EventResponse
    ) async throws -> [EventResponse] {
        let requests = AppleVPPBatching.manageAssetsRequests(
            assets: assets,
            clientUserIds: clientUserIds,
            serialNumbers: serialNumbers,
            limits: try await client.limits()
        )
        return try await submitAll(requests, send)
    }

    /// Revokes every revocable asset of these users and devices, in as many requests as the limits require.
    public func revokeInBatches(clientUserIds: [String] = [], serialNumbers: [String] = []) async throws
        -> [EventResponse]
    {
        let requests = AppleVPPBatching.revokeRequests(
            clientUserIds: clientUserIds,
            serialNumbers: serialNumbers,
            limits: try await client.limits()
        )
        return try await submitAll(requests) { try await revoke($0) }
    }

    // MARK: Users

    /// One page of `GET /users`.
    public func users(
        filter: UserFilter = .init(),
        sinceVersionId: String? = nil,
        pageIndex: Int? = nil
    ) async throws -> GetUsersResponse {
        var query = filter.queryItems
        if let sinceVersionId { query.append(("sinceVersionId", sinceVersionId)) }
        if let pageIndex { query.append(("pageIndex", String(pageIndex))) }
        return try await get(ServiceURLKey.getUsers, "/users", query: query, as: GetUsersResponse.self)
    }

    /// Every page of `GET /users`.
    public func allUsers(filter: UserFilter = .init(), sinceVersionId: String? = nil) async throws
        -> PagedResult<ResponseUser>
    {
        try await allPages { try await users(filter: filter, sinceVersionId: sinceVersionId, pageIndex: $0) }
    }

    /// `POST /users/create`, batched by `maxUsers`.
    public func createUsers(_ users: [RequestUser]) async throws -> [EventResponse] {
        try await manageUsers(users, key: ServiceURLKey.createUsers, path: "/users/create")
    }

    /// `POST /users/update`, batched by `maxUsers`.
    public func updateUsers(_ users: [RequestUser]) async throws -> [EventResponse] {
        try await manageUsers(users, key: ServiceURLKey.updateUsers, path: "/users/update")
    }

    /// `POST /users/retire`, batched by `maxUsers`; releases the users' revocable licenses.
    public func retireUsers(clientUserIds: [String]) async throws -> [EventResponse] {
        try await manageUsers(
            clientUserIds.map { RequestUser(clientUserId: $0) },
            key: ServiceURLKey.retireUsers,
            path: "/users/retire"
        )
    }

    private func manageUsers(_ users: [RequestUser], key: String, path: String) async throws -> [EventResponse] {
        let requests = AppleVPPBatching.manageUsersRequests(users: users, limits: try await client.limits())
        return try await submitAll(requests) { try await post(key, path, body: $0, as: EventResponse.self) }
    }

    // MARK: Events

    /// `GET /status?eventId=`.
    public func eventStatus(_ eventId: String) async throws -> StatusResponse {
        try await get(ServiceURLKey.eventStatus, "/status", query: [("eventId", eventId)], as: StatusResponse.self)
    }

    /// Polls `/status` until the event is no longer PENDING. Apple asks for at least 30 s between polls while an
    /// event is PENDING and to resubmit after 10 minutes; the defaults follow that, tests shorten them. The first poll
    /// comes `firstPoll` after the request (at most `pollInterval`; Apple finishes most events within seconds), so a
    /// freed license reaches the next waiter in seconds rather than a poll interval later.
    public func waitForEvent(
        _ eventId: String,
        pollInterval: Duration = .seconds(30),
        firstPoll: Duration = .seconds(2),
        timeout: Duration = .seconds(600)
    ) async throws -> StatusResponse {
        let deadline = ContinuousClock.now + timeout
        try await Task.sleep(for: min(firstPoll, pollInterval))
        while true {
            let status = try await eventStatus(eventId)
            if status.isFinished { return status }
            guard ContinuousClock.now + pollInterval <= deadline else {
                throw AppleVPPError(
                    kind: .timeout,
                    message: "event \(eventId) still PENDING after \(timeout); resubmit the request"
                )
            }
            try await Task.sleep(for: pollInterval)
        }
    }

    // MARK: Plumbing

    private func get<Response: Decodable & AppleVPPTokenResponse>(
        _ key: String,
        _ path: String,
        query: [(String, String)] = [],
        as type: Response.Type
    ) async throws -> Response {
        let url = try await client.endpointURL(key, path: path)
        return checked(try await client.send(.GET, url: url, query: query, token: token, as: type))
    }

    private func post<Body: Encodable & Sendable, Response: Decodable & AppleVPPTokenResponse>(
        _ key: String,
        _ path: String,
        body: Body,
        as type: Response.Type
    ) async throws -> Response {
        let url = try await client.endpointURL(key, path: path)
        return checked(try await client.send(.POST, url: url, body: body, token: token, as: type))
    }

    private func checked<Response: AppleVPPTokenResponse>(_ response: Response) -> Response {
        if let ownMDMInfo, Self.isForeign(response.mdmInfo, own: ownMDMInfo) {
            onMDMInfoMismatch?(response.mdmInfo)
        }
        return response
    }

    private func submitAll<Request: Sendable>(
        _ requests: [Request],
        _ submit: (Request) async throws -> EventResponse
    ) async throws -> [EventResponse] {
        var events: [EventResponse] = []
        for request in requests {
            do {
                events.append(try await submit(request))
            } catch let error as AppleVPPError {
                throw AppleVPPBatchError(submitted: events, failedBatchIndex: events.count, error: error)
            }
        }
        return events
    }

    private func allPages<Page: AppleVPPPage>(
        progress: (@Sendable (_ read: Int, _ expected: Int) async -> Void)? = nil,
        _ fetch: @escaping @Sendable (Int?) async throws -> Page
    ) async throws -> PagedResult<Page.Item> where Page.Item: Sendable {
        let first = try await fetch(nil)
        let totalPages = first.totalPages ?? 1
        let expected = max(first.items.count, first.items.count * totalPages)
        var read = first.items.count
        await progress?(read, expected)
        var pages: [Int: Page] = [:]
        if first.nextPageIndex != nil, totalPages > 1 {
            let limit = client.configuration.maxConcurrentPageRequests
            try await withThrowingTaskGroup(of: (Int, Page).self) { group in
                var next = 1
                while next < totalPages, next <= limit {
                    let index = next
                    group.addTask { (index, try await fetch(index)) }
                    next += 1
                }
                while let (index, page) = try await group.next() {
                    pages[index] = page
                    read += page.items.count
                    await progress?(read, max(read, expected))
                    if next < totalPages {
                        let index = next
                        group.addTask { (index, try await fetch(index)) }
                        next += 1
                    }
                }
            }
        }
        var items = first.items
        var consistent = true
        for index in 1..<max(1, totalPages) {
            guard let page = pages[index] else { continue }
            items.append(contentsOf: page.items)
            if page.versionId != first.versionId { consistent = false }
        }
        return PagedResult(items: items, versionId: first.versionId, consistent: consistent)
    }
}

/// Every item of a paginated read.
public struct PagedResult<Item: Sendable>: Sendable {
    public var items: [Item]
    /// The `versionId` of the first page: pass it as `sinceVersionId` next time.
    public var versionId: String?
    /// `false` when the data changed while the pages were read (their `versionId`s differ): read again.
    public var consistent: Bool
}

/// A batched write failed part-way: `submitted` went through (follow their events), the rest was not sent.
public struct AppleVPPBatchError: Error, Sendable, CustomStringConvertible {
    public var submitted: [EventResponse]
    public var failedBatchIndex: Int
    public var error: AppleVPPError

    public var description: String {
        "batch \(failedBatchIndex) failed after \(submitted.count) were submitted: \(error)"
    }
}
