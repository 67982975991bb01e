import AppleVPP
public import Foundation
import NIOCore
import Hummingbird
import HummingbirdTLS
public import Logging
import Metrics
public import NIOSSL
public import ServiceLifecycle
import VPPLogKeys
public import VPPJobs
public import VPPStorage

/// Where vppd listens for Apple's notifications (issue 18).
public struct NotificationEndpointConfiguration: Sendable {
    public var host: String
    /// 0 for any free port (tests).
    public var port: Int
    /// TLS (Apple sends only to HTTPS URLs); nil serves plain HTTP, which vppd allows on loopback only.
    public var tls: TLSConfiguration?
    /// The path notifications arrive under: `<path>/<tenant id>/<token id>`.
    public var path: String
    /// The largest body accepted: a notification carries at most 100 elements, a few KiB.
    public var maxBodyBytes: Int

    public static let defaultPath = "/apple/notifications"

    public init(
        host: String = "127.0.0.1",
        port: Int = 0,
        tls: TLSConfiguration? = nil,
        path: String = NotificationEndpointConfiguration.defaultPath,
        maxBodyBytes: Int = 256 * 1024
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.path = path
        self.maxBodyBytes = maxBodyBytes
    }
}

/// The HTTP(S) listener Apple sends notifications to. For each one it checks the token's bearer (constant time),
/// bounds the body, records the notification once (a repeat of a `notificationId` changes nothing) together with
/// the job that acts on it, and answers 200 at once; the work runs on the queue. A wrong or missing bearer, or an
/// unknown token, gets 401 and counts in `vpp_apple_notifications_refused_total`.
public final class NotificationEndpoint: Service, Sendable {
    let configuration: NotificationEndpointConfiguration
    let tokens: TokenStore
    let queue: JobQueue
    let logger: Logger
    let onPort: @Sendable (Int) -> Void

    public init(
        configuration: NotificationEndpointConfiguration,
        tokens: TokenStore,
        queue: JobQueue,
        logger: Logger,
        onPort: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.tokens = tokens
        self.queue = queue
        self.logger = logger
        self.onPort = onPort
    }

    public func run() async throws {
        let router = Router()
        router.post(RouterPath(self.configuration.path + "/:tenant/:token")) { request, context -> Response in
            await self.receive(
                request,
                tenant: context.parameters.get("tenant"),
                token: context.parameters.get("token")
            )
        }
        let onPort = self.onPort
        let logger = self.logger
        let tls = self.configuration.tls != nil
        let app = Application(
            router: router,
            server: try self.configuration.tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
            configuration: .init(
                address: .hostname(self.configuration.host, port: self.configuration.port),
                serverName: "vppd-notifications"
            ),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info(
                    "Listening for Apple's notifications",
                    metadata: [LogKey.port: "\(port)", LogKey.tls: "\(tls)"]
                )
                onPort(port)
            },
            logger: self.logger
        )
        try await app.runService()
    }

    /// What the endpoint answers; separate from HTTP so that tests can call it directly.
    struct Answer: Sendable, Hashable {
        var status: Int
        var message: String
    }

    func receive(_ request: Request, tenant: String?, token: String?) async -> Response {
        var request = request
        let answer: Answer
        do {
            let body = try await request.collectBody(upTo: self.configuration.maxBodyBytes)
            answer = await self.receive(
                tenant: tenant,
                token: token,
                authorization: request.headers[.authorization],
                body: Data(body.readableBytesView)
            )
        } catch {
            Self.refused("too_large")
            answer = Answer(status: 413, message: "The body is over \(self.configuration.maxBodyBytes) bytes.")
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let text = (try? JSONEncoder().encode(["message": answer.message])) ?? Data()
        return Response(
            status: HTTPResponse.Status(code: answer.status),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: text))
        )
    }

    func receive(tenant: String?, token: String?, authorization: String?, body: Data) async -> Answer {
        guard let tenantID = tenant.flatMap(UUID.init(uuidString:)), let tokenID = token.flatMap(UUID.init(uuidString:))
        else {
            Self.refused("unknown")
            return Answer(status: 404, message: "No such notification URL.")
        }
        guard let authorization, authorization.hasPrefix("Bearer "), authorization.count <= 1024 else {
            Self.refused("no_bearer")
            return Answer(status: 401, message: "Authorization: Bearer <notificationAuthToken> is required.")
        }
        let bearer = String(authorization.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        do {
            let location: String
            switch try await self.tokens.checkNotificationBearer(tenantID: tenantID, tokenID, bearer: bearer) {
            case .accepted(let uid):
                location = uid
            case .unknown:
                Self.refused("unknown")
                return Answer(status: 401, message: "Unknown token or bearer.")
            case .refused:
                Self.refused("forged")
                self.logger.warning(
                    "Refused a notification with a wrong bearer token",
                    metadata: [LogKey.tenantID: "\(tenantID)", LogKey.tokenID: "\(tokenID)"]
                )
                return Answer(status: 401, message: "Unknown token or bearer.")
            }
            guard let header = try? NotificationHeader.decode(body),
                (1...200).contains(header.notificationId.count), header.notificationType.rawValue.count <= 100
            else {
                Self.refused("malformed")
                return Answer(status: 400, message: "The body is not one of Apple's notifications.")
            }
            if let uid = header.uId, !uid.isEmpty, uid != location {
                Self.refused("other_location")
                return Answer(status: 400, message: "The notification is about another location than this token's.")
            }
            let eventID = (try? JSONDecoder().decode(EventReference.self, from: body))?.notification.eventId
            let queue = self.queue
            let isNew = try await self.tokens.recordNotification(
                tenantID: tenantID,
                tokenID,
                notificationID: header.notificationId,
                type: header.notificationType.rawValue,
                eventID: eventID.flatMap { $0.isEmpty || $0.count > 200 ? nil : $0 },
                body: String(decoding: body, as: UTF8.self)
            ) { transaction in
                try await NotificationJobs.enqueue(
                    queue,
                    tenantID: tenantID,
                    tokenID: tokenID,
                    notificationID: header.notificationId,
                    in: transaction
                )
            }
            let type =
                NotificationType.all.contains(header.notificationType) ? header.notificationType.rawValue : "other"
            Counter(
                label: "vpp_apple_notifications_received_total",
                dimensions: [("type", type), ("repeat", isNew ? "false" : "true")]
            ).increment()
            self.logger.debug(
                "Apple's notification received",
                metadata: [
                    LogKey.tokenID: "\(tokenID)", LogKey.notificationType: "\(header.notificationType)",
                    LogKey.notificationID: "\(header.notificationId)",
                ]
            )
            return Answer(status: 200, message: isNew ? "recorded" : "already recorded")
        } catch {
            // Apple tries again (up to 3 attempts); polling covers what is lost.
            self.logger.warning(
                "Could not record Apple's notification",
                metadata: [LogKey.tokenID: "\(tokenID)", LogKey.error: "\(error)"]
            )
            return Answer(status: 503, message: "The notification could not be recorded; send it again.")
        }
    }

    static func refused(_ reason: String) {
        Counter(label: "vpp_apple_notifications_refused_total", dimensions: [("reason", reason)]).increment()
    }

    /// The event a notification is about, if its payload names one.
    struct EventReference: Decodable {
        struct Payload: Decodable {
            var eventId: String?
        }
        var notification: Payload
    }
}
