import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOSSL
import Testing
import VPPDaemon
import VPPJobs
import VPPNotifications
import VPPStorage
import VPPPostgres
import VPPTesting

/// Issue 18: the listener for Apple's notifications is HTTPS with vppd's settings, plain HTTP on loopback only.
@Suite("Apple's notifications: the listener's settings and TLS", .timeLimit(.minutes(2)))
struct NotificationListenerTests {
    @Test("without a certificate the listener is plain HTTP on loopback only; a URL that is not http(s) is refused")
    func plainOnlyOnLoopback() throws {
        let off = try ResolvedSettings(flags: [:], environment: [:], configFile: nil)
        #expect(try off.notificationEndpoint() == nil)
        let local = try ResolvedSettings(
            flags: [.notificationURL: "http://127.0.0.1:8444/apple/notifications/"],
            environment: [:],
            configFile: nil
        )
        let configuration = try #require(try local.notificationEndpoint())
        #expect(configuration.tls == nil)
        #expect(configuration.path == "/apple/notifications")
        #expect(configuration.port == 8444)
        let exposed = try ResolvedSettings(
            flags: [.notificationURL: "https://vpp.example.com/apple", .notificationHost: "0.0.0.0"],
            environment: [:],
            configFile: nil
        )
        #expect { try exposed.notificationEndpoint() } throws: { "\($0)".contains("--notification-tls-cert-file") }
        let bad = try ResolvedSettings(flags: [.notificationURL: "ftp://x/y"], environment: [:], configFile: nil)
        #expect(throws: SettingsError.self) { try bad.notificationEndpoint() }
    }

    @Test("with a certificate the listener speaks TLS: an HTTPS client that trusts it is answered, plain HTTP is not")
    func servesTLS() async throws {
        let certificates = try await TestCertificates.make()
        let settings = try ResolvedSettings(
            flags: [
                .notificationURL: "https://127.0.0.1/apple/notifications", .notificationHost: "127.0.0.1",
                .notificationPort: "0", .notificationTLSCertFile: certificates.certificateFile,
                .notificationTLSKeyFile: certificates.keyFile,
            ],
            environment: [:],
            configFile: nil
        )
        let configuration = try #require(try settings.notificationEndpoint())
        #expect(configuration.tls != nil)
        var logger = Logger(label: "test.notifications")
        logger.logLevel = .critical
        let database = try await TestPostgres.makeDatabase(prefix: "notify", poolSize: 2)
        let pool = PostgresPool(configuration: database, logger: logger)
        let storage = Storage(pool: pool, logger: logger)
        try await storage.migrate(concurrency: 1)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let endpoint = NotificationEndpoint(
            configuration: configuration,
            tokens: TokenStore(
                storage: storage,
                cipher: try TokenCipher(base64Key: TokenCipher.generateKeyText()),
                logger: logger
            ),
            queue: JobQueue(pool: pool, logger: logger),
            logger: logger
        ) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let task = Task { try await endpoint.run() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())

        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(certificates.caFile)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        let path = "/apple/notifications/\(UUID())/\(UUID())"
        var request = HTTPClientRequest(url: "https://127.0.0.1:\(port)\(path)")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: "{}"))
        // No bearer: refused, but over TLS.
        let answered = try await client.execute(request, timeout: .seconds(10))
        #expect(answered.status.code == 401)
        var plain = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        plain.method = .POST
        await #expect(throws: (any Error).self) {
            _ = try await client.execute(plain, timeout: .seconds(5)).body.collect(upTo: 1024)
        }
        try await client.shutdown()
        task.cancel()
        _ = await task.result
        await pool.shutdown()
    }
}
