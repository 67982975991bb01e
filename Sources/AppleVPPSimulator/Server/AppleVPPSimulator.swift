import AppleVPP
import Foundation
public import Hummingbird
public import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// Apple's App and Book Management API v2, simulated on a local port: the API under `/mdm/v2/...` (the client's
/// base URL is `baseURL`) and the control API under `/_control/...`. Tests run it in-process with `withSimulator`;
/// `vpp-apple-sim` runs it as a program.
public final class AppleVPPSimulator: Sendable {
    public let core: SimulatorCore
    /// `http://HOST:PORT/mdm/v2`.
    public let baseURL: String
    public let port: Int
    private let serviceGroup: ServiceGroup
    private let task: Task<Void, any Error>

    private init(
        core: SimulatorCore,
        baseURL: String,
        port: Int,
        serviceGroup: ServiceGroup,
        task: Task<Void, any Error>
    ) {
        self.core = core
        self.baseURL = baseURL
        self.port = port
        self.serviceGroup = serviceGroup
        self.task = task
    }

    /// Starts a simulator and returns once it listens.
    public static func start(
        configuration: SimulatorConfiguration = .init(),
        fixture: SimulatorFixture? = nil,
        logger: Logger = Logger(label: "apple-vpp-simulator")
    ) async throws -> AppleVPPSimulator {
        let core = try SimulatorCore(configuration: configuration, fixture: fixture)
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let app = makeApplication(core: core, logger: logger) { port in
            portContinuation.yield(port)
            portContinuation.finish()
        }
        let serviceGroup = ServiceGroup(
            configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger)
        )
        let task = Task { try await serviceGroup.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            task.cancel()
            _ = try await task.value
            throw SimulatorControlError("the simulator did not start")
        }
        let baseURL = "http://\(configuration.host):\(port)/mdm/v2"
        core.setBaseURL(baseURL)
        return AppleVPPSimulator(core: core, baseURL: baseURL, port: port, serviceGroup: serviceGroup, task: task)
    }

    /// Stops listening and waits for the server to end; then stops the core's background work (event completions,
    /// notification deliveries) and its HTTP client.
    public func shutdown() async throws {
        await serviceGroup.triggerGracefulShutdown()
        do {
            try await task.value
        } catch {
            await core.shutdown()
            throw error
        }
        await core.shutdown()
    }

    /// Runs `body` with a fresh simulator and shuts it down afterwards, also when `body` throws.
    public static func withSimulator<T: Sendable>(
        configuration: SimulatorConfiguration = .init(),
        fixture: SimulatorFixture? = nil,
        logger: Logger = Logger(label: "apple-vpp-simulator"),
        _ body: (AppleVPPSimulator) async throws -> T
    ) async throws -> T {
        let simulator = try await start(configuration: configuration, fixture: fixture, logger: logger)
        do {
            let result = try await body(simulator)
            try await simulator.shutdown()
            return result
        } catch {
            try? await simulator.shutdown()
            throw error
        }
    }

    /// The Hummingbird application serving `core`; `onPort` is called with the bound port. Whoever runs it calls
    /// `core.shutdown()` once it has stopped (notifications are sent by the core, not by the application).
    public static func makeApplication(
        core: SimulatorCore,
        logger: Logger,
        onPort: @escaping @Sendable (Int) -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router()
        let maxBody = 16 << 20
        for path in SimulatorCore.apiPaths {
            for method in [HTTPRequest.Method.get, .post, .put, .delete] {
                router.on(RouterPath("/mdm/v2" + path), method: method) { request, _ -> Response in
                    var request = request
                    let body = try await request.collectBody(upTo: maxBody)
                    var query: [String: String] = [:]
                    for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
                    let answer = await core.handle(
                        SimulatorRequest(
                            method: request.method.rawValue,
                            path: path,
                            query: query,
                            rawQuery: request.uri.query,
                            authorization: request.headers[.authorization],
                            contentType: request.headers[.contentType],
                            body: Data(body.readableBytesView)
                        )
                    )
                    return Self.response(answer)
                }
            }
        }
        for path in [
            "/locations", "/tokens", "/tokens/expire", "/tokens/revoke", "/purchases", "/refunds", "/users/accept",
            "/users", "/mdm-info", "/client-config", "/assignments", "/events/process", "/public-apps", "/faults",
            "/requests", "/notification-faults", "/notifications",
        ] {
            for method in [HTTPRequest.Method.get, .post, .delete] {
                router.on(RouterPath("/_control" + path), method: method) { request, _ -> Response in
                    var request = request
                    let body = try await request.collectBody(upTo: maxBody)
                    var query: [String: String] = [:]
                    for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
                    return Self.response(
                        core.handleControl(
                            method: request.method.rawValue,
                            path: path,
                            query: query,
                            body: Data(body.readableBytesView)
                        )
                    )
                }
            }
        }
        return Application(
            router: router,
            configuration: .init(
                address: .hostname(core.configuration.host, port: core.configuration.port),
                serverName: "apple-vpp-simulator"
            ),
            onServerRunning: { channel in onPort(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    static func response(_ answer: SimulatorResponse) -> Response {
        var fields = HTTPFields()
        for (name, value) in answer.headers {
            switch name.lowercased() {
            case "content-type": fields[.contentType] = value
            case "retry-after": fields[.retryAfter] = value
            default: break
            }
        }
        return Response(
            status: HTTPResponse.Status(code: answer.status),
            headers: fields,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body))
        )
    }
}
