public import AsyncHTTPClient
import Foundation
public import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The client of Apple's App and Book Management API v2, shared by every token (tenant) of the process.
///
/// It reads `service/config` (cached, refreshed every `serviceConfigRefreshInterval`) and takes every endpoint URL
/// and limit from it. Calls that need a token go through an `AppleVPPSession` (`session(token:...)`).
///
/// Every failure is an `AppleVPPError`, including an error body inside an HTTP 200. Throttling (429/9646), 5xx and
/// lost connections are retried by `configuration.retryPolicy`, honouring `Retry-After`; token errors and other 4xx
/// are not. The token is sent only in the `Authorization` header and is never logged.
public final class AppleVPPClient: Sendable {
    public let configuration: AppleVPPClientConfiguration
    let httpClient: HTTPClient
    let logger: Logger
    private let cachedServiceConfig = NIOLockedValueBox<
        (config: ServiceConfigResponse, fetched: ContinuousClock.Instant)?
    >(nil)

    /// - Parameter httpClient: owned by the caller, who shuts it down after the last call.
    public init(httpClient: HTTPClient, configuration: AppleVPPClientConfiguration = .init(), logger: Logger) {
        self.httpClient = httpClient
        self.configuration = configuration
        self.logger = logger
    }

    /// A session for one token. `ownMDMInfo` is what this server set with `claim(_:)`; when a response names another
    /// MDM (a different `mdmInfo.id`, or none), `onMDMInfoMismatch` is called with what the response says.
    public func session(
        token: ServiceToken,
        ownMDMInfo: MDMInfo? = nil,
        onMDMInfoMismatch: (@Sendable (_ observed: MDMInfo?) -> Void)? = nil
    ) -> AppleVPPSession {
        AppleVPPSession(client: self, token: token, ownMDMInfo: ownMDMInfo, onMDMInfoMismatch: onMDMInfoMismatch)
    }

    // MARK: Service config and content metadata (no token)

    /// `GET /service/config`, cached for `serviceConfigRefreshInterval`.
    public func serviceConfig(forceRefresh: Bool = false) async throws -> ServiceConfigResponse {
        let now = ContinuousClock.now
        if !forceRefresh, let cached = cachedServiceConfig.withLockedValue({ $0 }),
            cached.fetched.duration(to: now) < configuration.serviceConfigRefreshInterval
        {
            return cached.config
        }
        let config = try await send(
            .GET,
            url: configuration.baseURL + "/service/config",
            token: nil,
            as: ServiceConfigResponse.self
        )
        cachedServiceConfig.withLockedValue { $0 = (config, now) }
        return config
    }

    /// The limits from the current service config.
    public func limits() async throws -> ServiceLimits {
        try await serviceConfig().serviceLimits
    }

    /// R20: the link a user follows to accept Apple's VPP invitation: service config's `invitationEmail` template
    /// with the user's `inviteCode` in place of `%25inviteCode%25` (or `%inviteCode%`). nil when Apple gives no template.
    public func invitationURL(inviteCode: String) async throws -> String? {
        guard let template = try await serviceConfig().urls[ServiceURLKey.invitationEmail] else { return nil }
        return Self.invitationURL(template: template, inviteCode: inviteCode)
    }

    /// The template filled in; nil for an empty code.
    public static func invitationURL(template: String, inviteCode: String) -> String? {
        guard !inviteCode.isEmpty else { return nil }
        let code = inviteCode.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? inviteCode
        return template.replacingOccurrences(of: "%25inviteCode%25", with: code)
            .replacingOccurrences(of: "%inviteCode%", with: code)
    }

    /// Names, bundle ids and kinds of the given adamIds from the public content-metadata lookup. An adamId missing
    /// from the answer is not public: a custom B2B app, or one no longer sold.
    public func lookupContentMetadata(adamIds: [String]) async throws -> [ContentMetadata] {
        guard !adamIds.isEmpty else { return [] }
        let config = try await serviceConfig()
        guard let lookup = config.urls[ServiceURLKey.contentMetadataLookup] else {
            throw AppleVPPError(kind: .invalidRequest, message: "service config has no contentMetadataLookup URL")
        }
        var results: [ContentMetadata] = []
        for chunk in AppleVPPBatching.unique(adamIds).chunked(into: 100) {
            let response = try await send(
                .GET,
                url: lookup,
                query: [("id", chunk.joined(separator: ","))],
                token: nil,
                as: ContentMetadataLookupResponse.self
            )
            results.append(contentsOf: response.results)
        }
        return results
    }

    /// The URL of an endpoint: from service config when it names one, else the base URL and the documented path.
    func endpointURL(_ key: String, path: String) async throws -> String {
        let config = try await serviceConfig()
        return config.urls[key] ?? configuration.baseURL + path
    }

    // MARK: Transport

    /// Sends one request (retrying as the policy says) and decodes the answer.
    func send<Response: Decodable>(
        _ method: HTTPMethod,
        url: String,
        query: [(String, String)] = [],
        body: (some Encodable & Sendable)? = nil as ClientConfigRequest?,
        token: ServiceToken?,
        as: Response.Type
    ) async throws -> Response {
        var request = HTTPClientRequest(url: Self.url(url, query: query))
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: configuration.userAgent)
        if let token {
            request.headers.add(name: "Authorization", value: "Bearer " + token.bearerCredential)
        }
        if let body {
            let data: Data
            do {
                data = try JSONEncoder().encode(body)
            } catch {
                throw AppleVPPError(kind: .invalidRequest, message: "could not encode the request: \(error)")
            }
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: data))
        }
        let path = Self.pathForLogs(url)
        var attempt = 1
        while true {
            do {
                return try await attemptOnce(request, as: Response.self)
            } catch let error as AppleVPPError {
                guard let delay = configuration.retryPolicy.delay(afterAttempt: attempt, error: error) else {
                    logger.debug(
                        "Apple VPP request failed",
                        metadata: [
                            "method": "\(method.rawValue)", "path": "\(path)", "attempt": "\(attempt)",
                            "error": "\(error)",
                        ]
                    )
                    throw error
                }
                logger.info(
                    "Apple VPP request will be retried",
                    metadata: [
                        "method": "\(method.rawValue)", "path": "\(path)", "attempt": "\(attempt)",
                        "error": "\(error)", "delay": "\(delay)",
                    ]
                )
                try await Task.sleep(for: delay)
                attempt += 1
            }
        }
    }

    private func attemptOnce<Response: Decodable>(
        _ request: HTTPClientRequest,
        as: Response.Type
    ) async throws -> Response {
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await httpClient.execute(request, timeout: .init(configuration.requestTimeout))
            body = try await response.body.collect(upTo: configuration.maxResponseBytes)
        } catch let error as NIOTooManyBytesError {
            throw AppleVPPError(kind: .invalidResponse, message: "answer larger than allowed: \(error)")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw AppleVPPError(kind: .transport, message: "no answer from Apple: \(error)")
        }
        let status = Int(response.status.code)
        let retryAfter = response.headers.first(name: "Retry-After").flatMap(Self.parseRetryAfter)
        let bytes = Data(body.readableBytesView)
        let decoder = JSONDecoder()

        // Apple's error body can come with any status, 200 included: look for it first. Error bodies are small, so
        // a large 2xx answer (a page of assignments) is not parsed twice.
        if !(200...299).contains(status) || bytes.count < 4096,
            let probe = try? decoder.decode(ErrorProbe.self, from: bytes), let errorNumber = probe.errorNumber
        {
            throw AppleVPPError(
                kind: .api,
                errorNumber: errorNumber,
                httpStatus: status,
                message: probe.errorMessage ?? "Apple error \(errorNumber)",
                errorInfo: probe.errorInfo,
                retryAfterSeconds: retryAfter
            )
        }
        guard (200...299).contains(status) else {
            throw AppleVPPError(
                kind: .http,
                httpStatus: status,
                message: "HTTP \(status) \(response.status.reasonPhrase)",
                retryAfterSeconds: retryAfter
            )
        }
        do {
            return try decoder.decode(Response.self, from: bytes)
        } catch {
            throw AppleVPPError(
                kind: .invalidResponse,
                httpStatus: status,
                message: "the answer is not a \(Response.self): \(error)"
            )
        }
    }

    /// `Retry-After`: seconds, or an HTTP date.
    static func parseRetryAfter(_ value: String) -> Double? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed), seconds >= 0 { return seconds }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: 0)
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return max(0, date.timeIntervalSinceNow)
    }

    static func url(_ base: String, query: [(String, String)]) -> String {
        guard !query.isEmpty else { return base }
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+;,/?")
        let encoded = query.map { name, value in
            let escapedValue = value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
            return "\(name)=\(escapedValue)"
        }.joined(separator: "&")
        return base + (base.contains("?") ? "&" : "?") + encoded
    }

    /// The URL without scheme, host or query, for logs.
    static func pathForLogs(_ url: String) -> String {
        guard let components = URLComponents(string: url) else { return "?" }
        return components.path
    }
}

/// The part of an answer that marks it as an error.
private struct ErrorProbe: Decodable {
    var errorNumber: Int?
    var errorMessage: String?
    var errorInfo: ErrorInfo?
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
