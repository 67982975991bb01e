import AsyncHTTPClient
import ServiceLifecycle

/// The HTTP client vppd talks to Apple with (`AppleVPPClient`), as a `Service` of vppd's `ServiceGroup`: usable from
/// `init` on; `run()` waits for graceful shutdown or cancellation, then shuts the client down with `shutdown()`.
final class HTTPClientService: Service, Sendable {
    let client = HTTPClient(eventLoopGroupProvider: .singleton)

    func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Shuts the client down: its connections close, and requests still running fail. Calling it again is harmless.
    func shutdown() async {
        // A second call throws `alreadyShutdown`, which is no news.
        try? await client.shutdown()
    }
}
