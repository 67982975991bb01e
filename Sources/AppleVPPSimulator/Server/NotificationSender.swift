import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// The simulator's one HTTP client for notifications: created on the first notification, shut down by
/// `SimulatorCore.shutdown()`. One attempt is one POST; retries and faults are the core's business.
final class NotificationSender: Sendable {
    /// What one attempt came to: the HTTP status, or why there was none.
    struct Outcome: Sendable {
        var status: Int?
        var error: String?
        /// Apple counts any 2xx as delivered (reference §3).
        var delivered: Bool { status.map { (200..<300).contains($0) } ?? false }
    }

    private struct State {
        var client: HTTPClient?
        var closed = false
    }

    private let state = NIOLockedValueBox(State())

    private func client() -> HTTPClient? {
        state.withLockedValue { state in
            if state.closed { return nil }
            if let client = state.client { return client }
            var configuration = HTTPClient.Configuration()
            // Apple posts to the URL it was given; a redirect is the receiver's failure, not a new address.
            configuration.redirectConfiguration = .disallow
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            state.client = client
            return client
        }
    }

    /// POSTs the notification's body with `Authorization: Bearer <notificationAuthToken>`, as Apple does; the answer
    /// must come within `timeout`.
    func post(_ notification: OutgoingNotification, timeout: Duration) async -> Outcome {
        guard let client = client() else { return Outcome(error: "the simulator has shut down") }
        var request = HTTPClientRequest(url: notification.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Authorization", value: "Bearer \(notification.token)")
        request.headers.add(name: "User-Agent", value: "apple-vpp-simulator")
        request.body = .bytes(ByteBuffer(bytes: notification.body))
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(max(1, nanoseconds)))
            let status = Int(response.status.code)
            // The answer's body means nothing to Apple; read it so the connection can be reused.
            do { for try await _ in response.body {} } catch {}
            return Outcome(status: status)
        } catch {
            return Outcome(error: "\(error)")
        }
    }

    /// Shuts the client down (and refuses to send from now on).
    func shutdown() async {
        let client = state.withLockedValue { state -> HTTPClient? in
            state.closed = true
            defer { state.client = nil }
            return state.client
        }
        try? await client?.shutdown()
    }

    deinit {
        // A core dropped without shutdown(): let the client go rather than trip its debug check.
        if let client = state.withLockedValue({ $0.client }) { client.shutdown { _ in } }
    }
}
