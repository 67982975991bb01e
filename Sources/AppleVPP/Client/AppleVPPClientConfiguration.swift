/// Settings of an `AppleVPPClient`.
public struct AppleVPPClientConfiguration: Sendable {
    /// Apple's production base URL.
    public static let appleBaseURL = "https://vpp.itunes.apple.com/mdm/v2"

    /// Where `service/config` is read; every other URL comes from its `urls` (with `baseURL` + path as fallback).
    public var baseURL: String
    public var retryPolicy: RetryPolicy
    /// Time limit of one HTTP request (one attempt).
    public var requestTimeout: Duration
    /// How long a service config is used before it is read again; Apple asks for every five minutes.
    public var serviceConfigRefreshInterval: Duration
    /// Answers larger than this are refused rather than buffered.
    public var maxResponseBytes: Int
    /// Page requests in flight at once when reading all pages; Apple: "don't submit more than five".
    public var maxConcurrentPageRequests: Int
    public var userAgent: String

    public init(
        baseURL: String = AppleVPPClientConfiguration.appleBaseURL,
        retryPolicy: RetryPolicy = RetryPolicy(),
        requestTimeout: Duration = .seconds(30),
        serviceConfigRefreshInterval: Duration = .seconds(300),
        maxResponseBytes: Int = 32 << 20,
        maxConcurrentPageRequests: Int = 5,
        userAgent: String = "vpp-license-server"
    ) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.retryPolicy = retryPolicy
        self.requestTimeout = requestTimeout
        self.serviceConfigRefreshInterval = serviceConfigRefreshInterval
        self.maxResponseBytes = maxResponseBytes
        self.maxConcurrentPageRequests = min(5, max(1, maxConcurrentPageRequests))
        self.userAgent = userAgent
    }
}
