import Foundation
import Logging
import NIOConcurrencyHelpers
import VPPClient
import VPPProto
import VPPServer
import VPPTesting
import VPPWire

/// Records what test handlers saw, so tests can check that cancelled work really stopped.
final class HandlerProbe: Sendable {
    private let state = NIOLockedValueBox<(started: Int, cancelled: Int, finished: Int)>((0, 0, 0))
    func started() { self.state.withLockedValue { $0.started += 1 } }
    func cancelled() { self.state.withLockedValue { $0.cancelled += 1 } }
    func finished() { self.state.withLockedValue { $0.finished += 1 } }
    var counts: (started: Int, cancelled: Int, finished: Int) { self.state.withLockedValue { $0 } }
}

/// An RPC server on a free port with test behaviour behind real method names:
/// - `SystemService/Ping`: echoes; a payload "sleep:<ms>" sleeps that long first (cancellably); "fail" throws an
///   unexpected error; "bad" returns NOT_FOUND; "big:<n>" answers with n bytes.
/// - `SyncService/WatchSyncJob`: streams `job_id`'s number of SyncJob messages, then ends OK; "forever" streams until
///   cancelled.
/// - `OperatorService/GetMigrationStatus`: registered operator-only (to test authorization).
struct TestServer {
    static let tenantKey = "tenant-key-1"
    static let operatorKey = "operator-key-1"
    static let tenantPrincipal = Principal(
        kind: .tenant,
        tenantID: "tenant-a",
        keyID: "k-tenant",
        keyName: "test tenant key"
    )
    static let operatorPrincipal = Principal(
        kind: .operator,
        tenantID: nil,
        keyID: "k-operator",
        keyName: "test operator key"
    )

    let server: RPCServer
    let authenticator: StaticAuthenticator
    let probe: HandlerProbe

    var port: Int { self.server.localPort! }

    static func start(_ configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestServer {
        var configuration = ServerConfiguration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        let probe = HandlerProbe()
        var router = RPCRouter()
        router.register(VppV1.SystemService.Ping.self, requires: .any) { request, context in
            probe.started()
            let command = String(decoding: request.payload, as: UTF8.self)
            if command.hasPrefix("sleep:"), let ms = Int(command.dropFirst(6)) {
                do {
                    try await Task.sleep(for: .milliseconds(ms))
                } catch {
                    probe.cancelled()
                    throw error
                }
            } else if command == "fail" {
                struct Unexpected: Error {}
                throw Unexpected()
            } else if command == "bad" {
                throw RPCError.notFound("No such thing.")
            } else if command.hasPrefix("big:"), let size = Int(command.dropFirst(4)) {
                return VppV1.PingResponse(payload: [UInt8](repeating: 0x62, count: size))
            }
            probe.finished()
            return VppV1.PingResponse(payload: request.payload)
        }
        router.register(VppV1.SystemService.WhoAmI.self, requires: .any) { _, context in
            VppV1.WhoAmIResponse(
                principalKind: context.principal.kind.rawValue,
                tenantId: context.principal.tenantID ?? "",
                keyId: context.principal.keyID
            )
        }
        router.registerStream(VppV1.SyncService.WatchSyncJob.self, requires: .tenant) { request, _, stream in
            probe.started()
            let count = request.jobId == "forever" ? Int.max : Int(request.jobId) ?? 0
            var index = 0
            do {
                while index < count {
                    try await stream.send(VppV1.SyncJob(id: request.jobId, itemsDone: UInt64(index)))
                    index += 1
                    if count == Int.max { try await Task.sleep(for: .milliseconds(5)) }
                }
            } catch {
                probe.cancelled()
                throw error
            }
            probe.finished()
        }
        router.register(VppV1.OperatorService.GetMigrationStatus.self, requires: .operator) { _, _ in
            VppV1.GetMigrationStatusResponse()
        }
        let authenticator = StaticAuthenticator([
            Self.tenantKey: Self.tenantPrincipal,
            Self.operatorKey: Self.operatorPrincipal,
        ])
        var logger = Logger(label: "test.rpc")
        logger.logLevel = .critical
        let server = RPCServer(
            configuration: configuration,
            router: router,
            authenticator: authenticator,
            logger: logger,
            callLogLevel: .debug
        )
        try await server.start()
        return TestServer(server: server, authenticator: authenticator, probe: probe)
    }

    func client(key: String = TestServer.tenantKey, reconnect: Bool = true) -> VPPClient {
        VPPClient(ClientConfiguration(host: "127.0.0.1", port: self.port, apiKey: key, reconnect: reconnect))
    }

    func stop() async {
        await self.server.shutdown(gracePeriod: .seconds(1))
    }
}

extension VppV1.PingRequest {
    init(_ text: String) {
        self.init()
        self.payload = Array(text.utf8)
    }
}
