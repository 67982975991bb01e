import AppleVPP
public import Foundation

/// The control API under `/_control/...` (docs/apple-simulator.md lists it): JSON in, JSON out, HTTP 400 with
/// `{"error": "..."}` when refused. Each call maps to a `SimulatorCore` method.
extension SimulatorCore {
    struct LocationRef: Codable { var uId: String }
    struct TokenRef: Codable { var vppToken: String }
    struct IssueToken: Codable {
        var uId: String
        var expDate: String?
    }
    struct Purchase: Codable {
        var uId: String
        var adamId: String
        var pricingParam: PricingParam?
        var productType: ProductType?
        var count: Int
        var deviceAssignable: Bool?
        var revocable: Bool?
        var unlimited: Bool?
        var supportedPlatforms: [String]?
    }
    struct Refund: Codable {
        var uId: String
        var adamId: String
        var pricingParam: PricingParam?
        var count: Int
    }
    struct Accept: Codable {
        var uId: String
        var clientUserId: String
    }
    struct SetMDMInfo: Codable {
        var uId: String
        var mdmInfo: MDMInfo?
    }
    /// A rival MDM's client config: absent fields stay as they are (`setClientConfig(uId:...)`).
    struct RivalClientConfig: Codable {
        var uId: String
        var mdmInfo: MDMInfo?
        var notificationUrl: String?
        var notificationAuthToken: String?
        var notificationTypes: [String]?
    }
    struct AddAssignments: Codable {
        var uId: String
        var assignments: [AppleVPP.Assignment]?
        /// Shortcut for scale: `count` device assignments of `adamId`.
        var generate: Generate?
        struct Generate: Codable {
            var adamId: String
            var count: Int
            var serialPrefix: String?
        }
    }
    struct AddUsers: Codable {
        var uId: String
        var users: [SimulatorFixture.User]
    }
    struct PublicApps: Codable { var apps: [ContentMetadata] }
    struct Created: Codable {
        var uId: String
        var vppToken: String
    }
    struct Done: Codable { var ok = true }
    struct Failure: Codable { var error: String }

    /// Answers a control request; `path` is relative to `/_control`, `query` its query parameters.
    public func handleControl(
        method: String,
        path: String,
        query: [String: String] = [:],
        body: Data
    ) -> SimulatorResponse {
        do {
            func decode<T: Decodable>(_ type: T.Type) throws -> T {
                do { return try JSONDecoder().decode(type, from: body) } catch {
                    throw SimulatorControlError("body is not a valid \(type): \(error)")
                }
            }
            switch (method, path) {
            case ("POST", "/locations"):
                let created = try createLocation(try decode(SimulatorFixture.Location.self))
                return try Self.ok(Created(uId: created.uId, vppToken: created.vppToken))
            case ("POST", "/tokens"):
                let request = try decode(IssueToken.self)
                var expires = Date().addingTimeInterval(365 * 24 * 3600)
                if let text = request.expDate {
                    guard let date = AppleDate.parse(text) else { throw SimulatorControlError("bad expDate") }
                    expires = date
                }
                return try Self.ok(
                    Created(uId: request.uId, vppToken: try issueToken(uId: request.uId, expires: expires))
                )
            case ("POST", "/tokens/expire"):
                try expireToken(try decode(TokenRef.self).vppToken)
            case ("POST", "/tokens/revoke"):
                try revokeToken(try decode(TokenRef.self).vppToken)
            case ("POST", "/purchases"):
                let p = try decode(Purchase.self)
                try addPurchase(
                    uId: p.uId,
                    adamId: p.adamId,
                    pricingParam: p.pricingParam ?? .standard,
                    productType: p.productType ?? .app,
                    count: p.count,
                    deviceAssignable: p.deviceAssignable ?? true,
                    revocable: p.revocable ?? true,
                    unlimited: p.unlimited ?? false,
                    supportedPlatforms: p.supportedPlatforms ?? ["iOS"]
                )
            case ("POST", "/refunds"):
                let r = try decode(Refund.self)
                try refund(uId: r.uId, adamId: r.adamId, pricingParam: r.pricingParam ?? .standard, count: r.count)
            case ("POST", "/users/accept"):
                let request = try decode(Accept.self)
                try acceptInvitation(uId: request.uId, clientUserId: request.clientUserId)
            case ("POST", "/users"):
                let request = try decode(AddUsers.self)
                try addUsers(uId: request.uId, request.users)
            case ("POST", "/mdm-info"):
                let request = try decode(SetMDMInfo.self)
                try setMDMInfo(uId: request.uId, request.mdmInfo)
            case ("POST", "/client-config"):
                let request = try decode(RivalClientConfig.self)
                try setClientConfig(
                    uId: request.uId,
                    mdmInfo: request.mdmInfo,
                    notificationUrl: request.notificationUrl,
                    notificationAuthToken: request.notificationAuthToken,
                    notificationTypes: request.notificationTypes
                )
            case ("POST", "/assignments"):
                let request = try decode(AddAssignments.self)
                try addAssignments(uId: request.uId, request.assignments ?? [])
                if let generate = request.generate {
                    try addDeviceAssignments(
                        uId: request.uId,
                        adamId: generate.adamId,
                        count: generate.count,
                        serialPrefix: generate.serialPrefix ?? "SIM"
                    )
                }
            case ("POST", "/events/process"):
                processPendingEvents(uId: body.isEmpty ? nil : try decode(LocationRef.self).uId)
            case ("POST", "/public-apps"):
                addPublicApps(try decode(PublicApps.self).apps)
            case ("POST", "/faults"):
                injectFault(try decode(SimulatorFault.self))
            case ("DELETE", "/faults"):
                clearFaults()
            case ("POST", "/notification-faults"):
                injectNotificationFault(try decode(NotificationFault.self))
            case ("GET", "/notification-faults"):
                return try Self.ok(pendingNotificationFaults())
            case ("DELETE", "/notification-faults"):
                clearNotificationFaults()
            case ("GET", "/notifications"):
                return try Self.ok(notificationLog(uId: query["uId"]))
            case ("DELETE", "/notifications"):
                clearNotificationLog()
            case ("GET", "/requests"):
                return try Self.ok(recordedRequests())
            case ("DELETE", "/requests"):
                clearRecordedRequests()
            default:
                return SimulatorResponse(
                    status: 404,
                    headers: [("Content-Type", "application/json")],
                    body: (try? JSONEncoder().encode(Failure(error: "no control endpoint \(method) \(path)"))) ?? Data()
                )
            }
            return try Self.ok(Done())
        } catch {
            return SimulatorResponse(
                status: 400,
                headers: [("Content-Type", "application/json")],
                body: (try? JSONEncoder().encode(Failure(error: "\(error)"))) ?? Data()
            )
        }
    }
}
