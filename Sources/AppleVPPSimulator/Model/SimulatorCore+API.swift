import AppleVPP
public import Foundation

/// An API request as the simulator's HTTP layer hands it over; `path` is relative to `/mdm/v2` (e.g. `/assets`).
public struct SimulatorRequest: Sendable {
    public var method: String
    public var path: String
    public var query: [String: String]
    public var rawQuery: String?
    public var authorization: String?
    public var contentType: String?
    public var body: Data

    public init(
        method: String,
        path: String,
        query: [String: String] = [:],
        rawQuery: String? = nil,
        authorization: String? = nil,
        contentType: String? = nil,
        body: Data = Data()
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.rawQuery = rawQuery
        self.authorization = authorization
        self.contentType = contentType
        self.body = body
    }
}

/// The simulator's answer.
public struct SimulatorResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: Data
}

extension SimulatorCore {
    enum Endpoint: Sendable {
        case serviceConfig, clientConfig, assets, assignments, associate, disassociate, revoke, users, createUsers,
            updateUsers, retireUsers, status, lookup

        static let byPath: [String: (Endpoint, methods: Set<String>)] = [
            "/service/config": (.serviceConfig, ["GET"]),
            "/client/config": (.clientConfig, ["GET", "POST"]),
            "/assets": (.assets, ["GET"]),
            "/assignments": (.assignments, ["GET"]),
            "/assets/associate": (.associate, ["POST"]),
            "/assets/disassociate": (.disassociate, ["POST"]),
            "/assets/revoke": (.revoke, ["POST"]),
            "/users": (.users, ["GET"]),
            "/users/create": (.createUsers, ["POST"]),
            "/users/update": (.updateUsers, ["POST"]),
            "/users/retire": (.retireUsers, ["POST"]),
            "/status": (.status, ["GET"]),
            "/lookup": (.lookup, ["GET"]),
        ]
    }

    /// The paths the API answers on, relative to `/mdm/v2`.
    public static var apiPaths: [String] { Array(Endpoint.byPath.keys) }

    /// Answers one API request: faults first, then the endpoint.
    public func handle(_ request: SimulatorRequest) async -> SimulatorResponse {
        let arrived = started.duration(to: .now)
        let fault = takeFault(for: request.path, method: request.method)
        var response: SimulatorResponse
        switch fault?.kind {
        case .latency?:
            try? await Task.sleep(for: .milliseconds(fault?.latencyMilliseconds ?? 100))
            response = await answer(request)
        case .throttle?:
            response = Self.errorResponse(
                SimulatorAPIError(
                    AppleVPPError.Number.tooManyRequests,
                    429,
                    AppleErrorCatalogue.messages[9646]!,
                    retryAfter: fault?.retryAfterSeconds ?? 1
                )
            )
        case .unavailable?:
            response = Self.errorResponse(
                SimulatorAPIError(
                    AppleVPPError.Number.internalError,
                    503,
                    "Service temporarily unavailable",
                    retryAfter: fault?.retryAfterSeconds
                )
            )
        case .internalError?:
            response = Self.errorResponse(SimulatorAPIError(AppleVPPError.Number.internalError, 500, "Internal error"))
        case .errorIn200?:
            let number = fault?.errorNumber ?? AppleVPPError.Number.invalidToken
            response = Self.errorResponse(
                SimulatorAPIError(number, 200, AppleErrorCatalogue.messages[number] ?? "Error \(number)")
            )
        case nil:
            response = await answer(request)
        }
        let record = RecordedRequest(
            method: request.method,
            path: request.path,
            query: request.rawQuery,
            atSeconds: arrived.seconds,
            fault: fault?.kind,
            status: response.status
        )
        state.withLockedValue { state in
            if state.requests.count >= Self.maxRecordedRequests { state.requests.removeFirst(state.requests.count / 2) }
            state.requests.append(record)
        }
        return response
    }

    private func takeFault(for path: String, method: String) -> SimulatorFault? {
        state.withLockedValue { state in
            guard let index = state.faults.firstIndex(where: { $0.matches(path: path, method: method) }) else {
                return nil
            }
            let fault = state.faults[index]
            if fault.count <= 1 { state.faults.remove(at: index) } else { state.faults[index].count -= 1 }
            return fault
        }
    }

    private func answer(_ request: SimulatorRequest) async -> SimulatorResponse {
        guard let (endpoint, methods) = Endpoint.byPath[request.path] else {
            return Self.errorResponse(SimulatorAPIError(AppleVPPError.Number.invalidArgument, 404, "Not found"))
        }
        guard methods.contains(request.method) else {
            return Self.errorResponse(
                SimulatorAPIError(AppleVPPError.Number.unsupportedMethod, 405, "Unsupported HTTP method")
            )
        }
        if request.method == "POST", !(request.contentType ?? "").lowercased().hasPrefix("application/json") {
            return Self.errorResponse(.unsupportedContentType)
        }
        do {
            switch endpoint {
            case .serviceConfig: return try Self.ok(serviceConfig())
            case .lookup: return try Self.ok(lookup(request))
            case .clientConfig:
                return request.method == "GET"
                    ? try Self.ok(authenticated(request) { location, common in clientConfig(location, common) })
                    : try Self.ok(await setClientConfig(request))
            case .assets: return try Self.ok(getAssets(request))
            case .assignments: return try Self.ok(getAssignments(request))
            case .users: return try Self.ok(getUsers(request))
            case .associate: return try Self.ok(scheduled(manageAssets(request, type: .associate)))
            case .disassociate: return try Self.ok(scheduled(manageAssets(request, type: .disassociate)))
            case .revoke: return try Self.ok(scheduled(revokeAssets(request)))
            case .createUsers: return try Self.ok(scheduled(manageUsers(request, type: .create)))
            case .updateUsers: return try Self.ok(scheduled(manageUsers(request, type: .update)))
            case .retireUsers: return try Self.ok(scheduled(manageUsers(request, type: .retire)))
            case .status: return try Self.ok(eventStatus(request))
            }
        } catch let error as SimulatorAPIError {
            return Self.errorResponse(error)
        } catch {
            return Self.errorResponse(SimulatorAPIError(AppleVPPError.Number.internalError, 500, "\(error)"))
        }
    }

    /// An event was queued: with `.afterDelay`, a background task completes it once the delay has passed.
    private func scheduled(_ response: EventResponse) -> EventResponse {
        scheduleEventCompletion(uId: response.uId)
        return response
    }

    // MARK: Plumbing

    struct Common {
        var uId: String
        var tokenExpirationDate: String
        var mdmInfo: MDMInfo?
    }

    /// Checks the bearer token, brings the location's due events up to date and runs `body` on it under the lock;
    /// then sends the notifications that produced (also when `body` throws).
    func authenticated<T>(
        _ request: SimulatorRequest,
        _ body: (inout LocationState, Common) throws -> T
    ) throws -> T {
        guard let header = request.authorization, header.hasPrefix("Bearer ") else {
            throw SimulatorAPIError.badAuthorization
        }
        let credential = header.dropFirst("Bearer ".count).trimmingCharacters(in: .whitespaces)
        guard !credential.isEmpty else { throw SimulatorAPIError.badAuthorization }
        let now = Date()
        let completion = configuration.eventCompletion
        let seconds = secondsSinceStart
        defer { flushNotifications() }
        return try state.withLockedValue { state in
            guard let token = state.tokens[credential], state.locations[token.uId] != nil else {
                throw SimulatorAPIError.invalidToken
            }
            defer { state.collectNotifications(of: token.uId, atSeconds: seconds) }
            if token.revoked { throw SimulatorAPIError.tokenRevoked }
            if token.expirationDate <= now { throw SimulatorAPIError.tokenExpired }
            if case .afterDelay(let delay) = completion {
                state.locations[token.uId]!.processEvents(submittedBefore: .now - delay)
            }
            let common = Common(
                uId: token.uId,
                tokenExpirationDate: AppleDate.format(token.expirationDate),
                mdmInfo: state.locations[token.uId]!.mdmInfo
            )
            return try body(&state.locations[token.uId]!, common)
        }
    }

    static func ok(_ value: some Encodable) throws -> SimulatorResponse {
        SimulatorResponse(
            status: 200,
            headers: [("Content-Type", "application/json")],
            body: try JSONEncoder().encode(value)
        )
    }

    static func errorResponse(_ error: SimulatorAPIError) -> SimulatorResponse {
        var headers = [("Content-Type", "application/json")]
        if let retryAfter = error.retryAfterSeconds { headers.append(("Retry-After", String(retryAfter))) }
        return SimulatorResponse(
            status: error.httpStatus,
            headers: headers,
            body: (try? JSONEncoder().encode(error.body)) ?? Data()
        )
    }

    func decodeBody<T: Decodable>(_ request: SimulatorRequest, as type: T.Type) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: request.body)
        } catch {
            throw SimulatorAPIError.invalidArgument("The request body is not a valid \(type): \(error)")
        }
    }

    var limits: ServiceLimits { ServiceLimits(configuration.limits) }

    static func bool(_ request: SimulatorRequest, _ name: String) throws -> Bool? {
        guard let text = request.query[name] else { return nil }
        switch text.lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: throw SimulatorAPIError.invalidArgument("\(name) must be true or false")
        }
    }

    static func int(_ request: SimulatorRequest, _ name: String) throws -> Int? {
        guard let text = request.query[name] else { return nil }
        guard let value = Int(text) else { throw SimulatorAPIError.invalidArgument("\(name) must be an integer") }
        return value
    }

    /// Page `pageIndex` of `items`: (slice, currentPageIndex, nextPageIndex, totalPages); 9650 when out of range.
    /// Queues an event at the location (processed at once when the simulator completes events immediately) and
    /// answers its id, as Apple's POST endpoints do.
    static func submit(
        _ type: EventType,
        _ work: EventWork,
        requested: Int,
        _ location: inout LocationState,
        _ common: Common,
        _ completion: SimulatorConfiguration.EventCompletion
    ) -> EventResponse {
        let id = location.submit(type, work, requested: requested, now: .now)
        if completion == .immediately { location.processEvents(through: id) }
        return EventResponse(
            eventId: id,
            mdmInfo: common.mdmInfo,
            tokenExpirationDate: common.tokenExpirationDate,
            uId: common.uId
        )
    }

    /// The page `request` asks for of `items`, as the answer `make` builds from it, with the shared fields set.
    func pageAnswer<T, Answer: SimulatedPage>(
        _ items: [T],
        _ request: SimulatorRequest,
        _ location: LocationState,
        _ common: Common,
        _ make: ([T]) -> Answer
    ) throws -> Answer {
        let (slice, current, next, totalPages) = try page(items, request)
        var answer = make(Array(slice))
        answer.setPage(current, next, slice.count, totalPages, version: location.version, common)
        return answer
    }

    func page<T>(_ items: [T], _ request: SimulatorRequest) throws -> (ArraySlice<T>, Int, Int?, Int) {
        let size = configuration.pageSize
        let totalPages = max(1, (items.count + size - 1) / size)
        let index: Int
        do {
            index = try Self.int(request, "pageIndex") ?? 0
        } catch {
            throw SimulatorAPIError.pageOutOfRange
        }
        guard index >= 0, index < totalPages else { throw SimulatorAPIError.pageOutOfRange }
        let start = index * size
        let slice = items[min(start, items.count)..<min(start + size, items.count)]
        return (slice, index, index + 1 < totalPages ? index + 1 : nil, totalPages)
    }

    func sinceVersion(_ request: SimulatorRequest, current: Int) throws -> Int? {
        guard let text = request.query["sinceVersionId"] else { return nil }
        guard let value = Int(text), value >= 0, value <= current else { throw SimulatorAPIError.invalidVersionId }
        return value
    }

    // MARK: Service config, content lookup

    func serviceConfig() -> ServiceConfigResponse {
        let base = baseURL
        let root = base.hasSuffix("/mdm/v2") ? String(base.dropLast("/mdm/v2".count)) : base
        return ServiceConfigResponse(
            errorCodes: AppleErrorCatalogue.messages.keys.sorted().map {
                .init(errorNumber: $0, errorMessage: AppleErrorCatalogue.messages[$0])
            },
            limits: configuration.limits,
            notificationTypes: [
                "ASSET_COUNT", "ASSET_MANAGEMENT", "USER_MANAGEMENT", "USER_ASSOCIATED", "SUBSCRIPTION_MANAGEMENT",
                "SUBSCRIPTION_COUNT", "UNLIMITED_ASSET",
            ],
            urls: [
                ServiceURLKey.invitationEmail: root + "/_invite?inviteCode=%25inviteCode%25",
                ServiceURLKey.clientConfig: base + "/client/config",
                ServiceURLKey.createUsers: base + "/users/create",
                ServiceURLKey.getAssignments: base + "/assignments",
                ServiceURLKey.revokeAssets: base + "/assets/revoke",
                ServiceURLKey.contentMetadataLookup: base + "/lookup",
                ServiceURLKey.getUsers: base + "/users",
                ServiceURLKey.eventStatus: base + "/status",
                ServiceURLKey.associateAssets: base + "/assets/associate",
                ServiceURLKey.disassociateAssets: base + "/assets/disassociate",
                ServiceURLKey.updateUsers: base + "/users/update",
                ServiceURLKey.getAssets: base + "/assets",
                ServiceURLKey.retireUsers: base + "/users/retire",
            ]
        )
    }

    func lookup(_ request: SimulatorRequest) -> ContentMetadataLookupResponse {
        let ids = (request.query["id"] ?? "").split(separator: ",").map { String($0) }
        return state.withLockedValue { state in
            ContentMetadataLookupResponse(results: ids.compactMap { state.publicApps[$0] })
        }
    }

    // MARK: Client config

    func clientConfig(_ location: LocationState, _ common: Common) -> ClientConfigResponse {
        ClientConfigResponse(
            countryISO2ACode: location.countryISO2ACode,
            defaultPlatform: location.defaultPlatform,
            locationName: location.locationName,
            mdmInfo: location.mdmInfo,
            notificationAuthToken: location.notificationAuthToken,
            notificationUrl: location.notificationUrl,
            subscribedNotificationTypes: location.subscribedNotificationTypes,
            websiteURL: location.websiteURL,
            tokenExpirationDate: common.tokenExpirationDate,
            uId: common.uId
        )
    }

    /// `POST /client/config`: checks the request, then, when it sets a notification URL and token, sends the
    /// `TEST_NOTIFICATION` there (one attempt, waited for, outside the lock) and refuses the whole request with 9728
    /// unless it is answered 2xx ("If delivery fails, the configuration is rejected", reference §2.3); only then
    /// applies it.
    func setClientConfig(_ request: SimulatorRequest) async throws -> ClientConfigResponse {
        let limits = self.limits
        let uId = try authenticated(request) { _, common in common.uId }
        let body = try decodeBody(request, as: ClientConfigRequest.self)
        typealias N = AppleVPPError.Number
        if let info = body.mdmInfo {
            guard !info.id.isEmpty, !info.name.isEmpty, !info.metadata.isEmpty else {
                throw SimulatorAPIError(N.mdmInfoIncomplete, 400, "mdmInfo needs id, name and metadata")
            }
            if info.id.count > limits.maxMdmIdLength {
                throw SimulatorAPIError(N.mdmIdTooLong, 400, "mdmInfo id is too long")
            }
            if info.name.count > limits.maxMdmNameLength {
                throw SimulatorAPIError(N.mdmNameTooLong, 400, "mdmInfo name is too long")
            }
            if info.metadata.count > limits.maxMdmMetadataLength {
                throw SimulatorAPIError(N.mdmMetadataTooLong, 400, "mdmInfo metadata is too long")
            }
        }
        if (body.notificationUrl == nil) != (body.notificationAuthToken == nil) {
            throw SimulatorAPIError(N.notificationURLAndTokenRequired, 400, AppleErrorCatalogue.messages[9710]!)
        }
        if let url = body.notificationUrl, let token = body.notificationAuthToken {
            guard url.count <= limits.maxNotificationLength, token.count <= limits.maxNotificationLength else {
                throw SimulatorAPIError(N.notificationTooLong, 400, AppleErrorCatalogue.messages[9711]!)
            }
            guard Self.acceptsNotificationURL(url) else {
                throw SimulatorAPIError(N.notificationURLNotHTTPS, 400, AppleErrorCatalogue.messages[9712]!)
            }
            guard await sendTestNotification(uId: uId, url: url, token: token) else {
                throw SimulatorAPIError(N.notificationURLUnreachable, 400, AppleErrorCatalogue.messages[9728]!)
            }
        }
        return try authenticated(request) { location, common in
            if let url = body.notificationUrl, let token = body.notificationAuthToken {
                location.notificationUrl = url
                location.notificationAuthToken = token
            }
            if let info = body.mdmInfo { location.mdmInfo = info }
            if let types = body.notificationTypes { location.subscribedNotificationTypes = types }
            var common = common
            common.mdmInfo = location.mdmInfo
            return clientConfig(location, common)
        }
    }

    /// Apple takes only HTTPS notification URLs with a host (9712). The simulator also takes plain `http://` to a
    /// loopback host (127.0.0.1, ::1, localhost), so local runs and tests need no certificate: a deliberate deviation
    /// (docs/apple-simulator.md).
    static func acceptsNotificationURL(_ url: String) -> Bool {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
            return false
        }
        switch components.scheme?.lowercased() {
        case "https": return true
        case "http": return ["127.0.0.1", "::1", "[::1]", "localhost"].contains(host.lowercased())
        default: return false
        }
    }

    // MARK: Assets and assignments

    func getAssets(_ request: SimulatorRequest) throws -> GetAssetsResponse {
        let productType = request.query["productType"].map(ProductType.init(rawValue:))
        let pricingParam = request.query["pricingParam"].map(PricingParam.init(rawValue:))
        let revocable = try Self.bool(request, "revocable")
        let deviceAssignable = try Self.bool(request, "deviceAssignable")
        let unlimited = try Self.bool(request, "unlimited")
        let maxAvailable = try Self.int(request, "maxAvailableCount")
        let minAvailable = try Self.int(request, "minAvailableCount")
        let maxAssigned = try Self.int(request, "maxAssignedCount")
        let minAssigned = try Self.int(request, "minAssignedCount")
        let adamId = request.query["adamId"]
        return try authenticated(request) { location, common in
            let matching = location.assetOrder.compactMap { location.assets[$0] }.filter { asset in
                if let productType, asset.productType != productType { return false }
                if let pricingParam, asset.key.pricingParam != pricingParam { return false }
                if let revocable, asset.revocable != revocable { return false }
                if let deviceAssignable, asset.deviceAssignable != deviceAssignable { return false }
                if let adamId, asset.key.adamId != adamId { return false }
                if let unlimited, asset.unlimited != unlimited { return false }
                if let maxAvailable, asset.availableCount > maxAvailable { return false }
                if let minAvailable, asset.availableCount < minAvailable { return false }
                if let maxAssigned, asset.assignedCount > maxAssigned { return false }
                if let minAssigned, asset.assignedCount < minAssigned { return false }
                return true
            }
            let (slice, current, next, totalPages) = try page(matching, request)
            var response = GetAssetsResponse()
            response.setPage(current, next, slice.count, totalPages, version: location.version, common)
            if unlimited == true {
                response.unlimitedAssets = slice.map {
                    UnlimitedResponseAsset(
                        adamId: $0.key.adamId,
                        pricingParam: $0.key.pricingParam,
                        productType: $0.productType,
                        assignedCount: $0.assignedCount,
                        deviceAssignable: $0.deviceAssignable,
                        revocable: $0.revocable,
                        supportedPlatforms: $0.supportedPlatforms
                    )
                }
            } else {
                response.assets = slice.map {
                    ResponseAsset(
                        adamId: $0.key.adamId,
                        pricingParam: $0.key.pricingParam,
                        productType: $0.productType,
                        assignedCount: $0.assignedCount,
                        availableCount: $0.availableCount,
                        retiredCount: $0.retiredCount,
                        totalCount: $0.unlimited ? ResponseAsset.unlimitedTotalCount : $0.totalCount,
                        deviceAssignable: $0.deviceAssignable,
                        revocable: $0.revocable,
                        supportedPlatforms: $0.supportedPlatforms
                    )
                }
            }
            return response
        }
    }

    func getAssignments(_ request: SimulatorRequest) throws -> GetAssignmentsResponse {
        let excludeInactive = try Self.bool(request, "excludeInactiveUsers") ?? false
        let includeUserState = try Self.bool(request, "includeUserState") ?? false
        return try authenticated(request) { location, common in
            let since = try sinceVersion(request, current: location.version)
            let matching = location.matchingAssignments(
                adamId: request.query["adamId"],
                clientUserId: request.query["clientUserId"],
                serialNumber: request.query["serialNumber"],
                pricingParam: request.query["pricingParam"].map(PricingParam.init(rawValue:)),
                excludeInactiveUsers: excludeInactive,
                includeUserState: includeUserState,
                sinceVersion: since
            )
            return try pageAnswer(matching, request, location, common) { GetAssignmentsResponse(assignments: $0) }
        }
    }

    func manageAssets(_ request: SimulatorRequest, type: EventType) throws -> EventResponse {
        let body = try decodeBody(request, as: ManageAssetsRequest.self)
        let limits = self.limits
        typealias N = AppleVPPError.Number
        let users = body.clientUserIds ?? []
        let serials = body.serialNumbers ?? []
        guard !body.assets.isEmpty else {
            throw SimulatorAPIError(N.noAssets, 400, AppleErrorCatalogue.messages[9718]!)
        }
        guard !users.isEmpty || !serials.isEmpty else {
            throw SimulatorAPIError(N.noUsersOrSerialNumbers, 400, AppleErrorCatalogue.messages[9719]!)
        }
        guard body.assets.count <= limits.maxAssets else {
            throw SimulatorAPIError(N.tooManyAssets, 400, "More than \(limits.maxAssets) assets")
        }
        guard users.count <= limits.maxClientUserIds else {
            throw SimulatorAPIError(N.tooManyClientUserIds, 400, "More than \(limits.maxClientUserIds) clientUserIds")
        }
        guard serials.count <= limits.maxSerialNumbers else {
            throw SimulatorAPIError(N.tooManySerialNumbers, 400, "More than \(limits.maxSerialNumbers) serialNumbers")
        }
        guard Set(users).count == users.count else {
            throw SimulatorAPIError(N.duplicateClientUserIds, 400, AppleErrorCatalogue.messages[9704]!)
        }
        guard Set(serials).count == serials.count else {
            throw SimulatorAPIError(N.duplicateSerialNumbers, 400, AppleErrorCatalogue.messages[9705]!)
        }
        let completion = configuration.eventCompletion
        return try authenticated(request) { location, common in
            var keys: [AssetKey] = []
            var unknown: [AssetReference] = []
            for reference in body.assets {
                if let key = location.resolve(reference) { keys.append(key) } else { unknown.append(reference) }
            }
            guard Set(keys).count == keys.count else {
                throw SimulatorAPIError(N.duplicateAssets, 400, AppleErrorCatalogue.messages[9703]!)
            }
            guard unknown.isEmpty else {
                throw SimulatorAPIError.invalidArgument(
                    "The organization does not own these assets",
                    info: ErrorInfo(assets: unknown)
                )
            }
            let reference = { (key: AssetKey) in AssetReference(adamId: key.adamId, pricingParam: key.pricingParam) }
            if !serials.isEmpty {
                let notAssignable = keys.filter { location.assets[$0]?.deviceAssignable == false }
                guard notAssignable.isEmpty else {
                    throw SimulatorAPIError(
                        N.assetNotDeviceAssignable,
                        400,
                        AppleErrorCatalogue.messages[9707]!,
                        info: ErrorInfo(assets: notAssignable.map(reference))
                    )
                }
            }
            if type == .disassociate {
                let notRevocable = keys.filter { location.assets[$0]?.revocable == false }
                guard notRevocable.isEmpty else {
                    throw SimulatorAPIError(
                        N.assetNotRevocable,
                        400,
                        AppleErrorCatalogue.messages[9706]!,
                        info: ErrorInfo(assets: notRevocable.map(reference))
                    )
                }
            }
            let subjects = users.map(Subject.user) + serials.map(Subject.device)
            let work: EventWork =
                type == .associate
                ? .associate(assets: keys, subjects: subjects) : .disassociate(assets: keys, subjects: subjects)
            return Self.submit(type, work, requested: keys.count * subjects.count, &location, common, completion)
        }
    }

    func revokeAssets(_ request: SimulatorRequest) throws -> EventResponse {
        let body = try decodeBody(request, as: RevokeAssetsRequest.self)
        let limits = self.limits
        typealias N = AppleVPPError.Number
        let users = body.clientUserIds ?? []
        let serials = body.serialNumbers ?? []
        guard !users.isEmpty || !serials.isEmpty else {
            throw SimulatorAPIError(N.noUsersOrSerialNumbers, 400, AppleErrorCatalogue.messages[9719]!)
        }
        guard users.count <= limits.maxRevokeClientUserIds else {
            throw SimulatorAPIError(
                N.tooManyClientUserIds,
                400,
                "More than \(limits.maxRevokeClientUserIds) clientUserIds"
            )
        }
        guard serials.count <= limits.maxRevokeSerialNumbers else {
            throw SimulatorAPIError(
                N.tooManySerialNumbers,
                400,
                "More than \(limits.maxRevokeSerialNumbers) serialNumbers"
            )
        }
        guard Set(users).count == users.count else {
            throw SimulatorAPIError(N.duplicateClientUserIds, 400, AppleErrorCatalogue.messages[9704]!)
        }
        guard Set(serials).count == serials.count else {
            throw SimulatorAPIError(N.duplicateSerialNumbers, 400, AppleErrorCatalogue.messages[9705]!)
        }
        let completion = configuration.eventCompletion
        return try authenticated(request) { location, common in
            let subjects = users.map(Subject.user) + serials.map(Subject.device)
            return Self.submit(
                .revoke,
                .revoke(subjects: subjects),
                requested: subjects.count,
                &location,
                common,
                completion
            )
        }
    }

    // MARK: Users

    func getUsers(_ request: SimulatorRequest) throws -> GetUsersResponse {
        let activeOnly = try Self.bool(request, "activeOnly") ?? false
        let retiredOnly = try Self.bool(request, "retiredOnly") ?? false
        let clientUserId = request.query["clientUserId"]
        return try authenticated(request) { location, common in
            let since = try sinceVersion(request, current: location.version)
            let matching = location.users.values.filter { user in
                if let since, user.version <= since { return false }
                if let clientUserId, user.clientUserId != clientUserId { return false }
                let inactive = user.status == .retired || user.status == .deleted
                if activeOnly, inactive { return false }
                if retiredOnly, user.status != .retired { return false }
                return true
            }.sorted { $0.order < $1.order }.map(\.response)
            return try pageAnswer(matching, request, location, common) { GetUsersResponse(users: $0) }
        }
    }

    func manageUsers(_ request: SimulatorRequest, type: EventType) throws -> EventResponse {
        let body = try decodeBody(request, as: ManageUsersRequest.self)
        let limits = self.limits
        typealias N = AppleVPPError.Number
        guard !body.users.isEmpty else { throw SimulatorAPIError(N.noUsers, 400, AppleErrorCatalogue.messages[9720]!) }
        guard body.users.count <= limits.maxUsers else {
            throw SimulatorAPIError(N.tooManyUsers, 400, "More than \(limits.maxUsers) users")
        }
        let ids = body.users.map(\.clientUserId)
        guard !ids.contains(where: \.isEmpty) else {
            throw SimulatorAPIError.invalidArgument("clientUserId is required")
        }
        guard Set(ids).count == ids.count else {
            throw SimulatorAPIError(N.duplicateUsers, 400, AppleErrorCatalogue.messages[9715]!)
        }
        if type != .retire {
            for user in body.users {
                if let email = user.email, !Self.looksLikeEmail(email) {
                    throw SimulatorAPIError(
                        N.invalidEmail,
                        400,
                        AppleErrorCatalogue.messages[9717]!,
                        info: ErrorInfo(clientUserIds: [user.clientUserId])
                    )
                }
            }
        }
        let completion = configuration.eventCompletion
        return try authenticated(request) { location, common in
            let work: EventWork =
                switch type {
                case .create: .createUsers(body.users)
                case .update: .updateUsers(body.users)
                default: .retireUsers(ids)
                }
            return Self.submit(type, work, requested: body.users.count, &location, common, completion)
        }
    }

    static func looksLikeEmail(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !text.contains(where: \.isWhitespace)
    }

    // MARK: Events

    func eventStatus(_ request: SimulatorRequest) throws -> StatusResponse {
        guard let eventId = request.query["eventId"], !eventId.isEmpty else { throw SimulatorAPIError.eventNotFound }
        let completion = configuration.eventCompletion
        return try authenticated(request) { location, common in
            guard var event = location.events[eventId] else { throw SimulatorAPIError.eventNotFound }
            event.polls += 1
            location.events[eventId] = event
            let response = StatusResponse(
                eventStatus: event.status,
                eventType: event.type,
                numCompleted: event.status == .pending ? 0 : event.numCompleted,
                numRequested: event.numRequested,
                failures: event.failures.isEmpty ? nil : event.failures,
                mdmInfo: common.mdmInfo,
                tokenExpirationDate: common.tokenExpirationDate,
                uId: common.uId
            )
            if event.status == .pending, completion == .afterFirstPoll {
                location.processEvents(through: eventId)
            }
            return response
        }
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// The fields every paged answer shares (the page, the version, the token's), written once for the three of them.
protocol SimulatedPage: AppleVPPPage {
    var currentPageIndex: Int? { get set }
    var nextPageIndex: Int? { get set }
    var size: Int? { get set }
    var totalPages: Int? { get set }
    var versionId: String? { get set }
    var mdmInfo: MDMInfo? { get set }
    var tokenExpirationDate: String? { get set }
    var uId: String? { get set }
}

extension SimulatedPage {
    mutating func setPage(
        _ current: Int,
        _ next: Int?,
        _ size: Int,
        _ totalPages: Int,
        version: Int,
        _ common: SimulatorCore.Common
    ) {
        self.currentPageIndex = current
        self.nextPageIndex = next
        self.size = size
        self.totalPages = totalPages
        self.versionId = String(version)
        self.mdmInfo = common.mdmInfo
        self.tokenExpirationDate = common.tokenExpirationDate
        self.uId = common.uId
    }
}

extension GetAssetsResponse: SimulatedPage {}
extension GetAssignmentsResponse: SimulatedPage {}
extension GetUsersResponse: SimulatedPage {}
