/// A fault the simulator injects into the next API requests (never into `/_control` or `/service/config`... unless
/// `includeServiceConfig`).
public struct SimulatorFault: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable {
        /// HTTP 429 with error 9646 and `Retry-After`.
        case throttle
        /// HTTP 503 with error 9603 and `Retry-After` (when given).
        case unavailable
        /// HTTP 500 with error 9603.
        case internalError
        /// HTTP 200 whose body is an error (`errorNumber`, default 9622), as Apple does for some errors.
        case errorIn200
        /// The request is answered normally after `latencyMilliseconds`.
        case latency
    }

    public var kind: Kind
    /// How many of the next requests it hits.
    public var count: Int
    public var retryAfterSeconds: Int?
    public var latencyMilliseconds: Int?
    public var errorNumber: Int?
    /// Only requests whose path ends with this (e.g. `/assignments`); all when nil.
    public var pathSuffix: String?
    /// Only requests with this HTTP method (`GET`, `POST`); all when nil. Reading the client config and claiming a
    /// token share one path, so a test that slows only the claim needs both.
    public var method: String?

    public init(
        kind: Kind,
        count: Int = 1,
        retryAfterSeconds: Int? = nil,
        latencyMilliseconds: Int? = nil,
        errorNumber: Int? = nil,
        pathSuffix: String? = nil,
        method: String? = nil
    ) {
        self.kind = kind
        self.count = count
        self.retryAfterSeconds = retryAfterSeconds
        self.latencyMilliseconds = latencyMilliseconds
        self.errorNumber = errorNumber
        self.pathSuffix = pathSuffix
        self.method = method
    }

    func matches(path: String, method: String) -> Bool {
        (self.pathSuffix.map(path.hasSuffix) ?? true) && (self.method.map { $0.uppercased() == method } ?? true)
    }
}

/// One API request as the simulator saw it: tests check timing (Retry-After honoured) and batch sizes with these.
public struct RecordedRequest: Codable, Sendable, Hashable {
    public var method: String
    public var path: String
    public var query: String?
    /// Seconds since the simulator started, on a monotonic clock.
    public var atSeconds: Double
    /// The fault injected into this request, if any.
    public var fault: SimulatorFault.Kind?
    /// The HTTP status answered.
    public var status: Int
}
