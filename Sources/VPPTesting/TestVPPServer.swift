public import Logging
public import VPPClient
public import VPPPostgres
public import VPPProto
public import VPPServer
public import VPPServices
public import VPPStorage

/// The real server for integration tests: real services on real storage (a fresh database of the test cluster, or
/// the one given), an operator key, and the RPC port on a free port.
public struct TestVPPServer: Sendable {
    public let database: PostgresConfiguration
    public let pool: PostgresPool
    public let storage: Storage
    public let authenticator: StorageAuthenticator
    public let server: RPCServer
    public let operatorKey: String
    /// Listens for changes announced by other servers (see `ChangeListener`), when asked to.
    let listener: Task<Void, any Error>?

    public var port: Int { self.server.localPort ?? 0 }

    public static func start(
        database: PostgresConfiguration? = nil,
        prefix: String = "vpp",
        poolSize: Int = 8,
        keyRecheckInterval: Duration = .seconds(2),
        tenantStateTTL: Duration = .seconds(2),
        listenForChanges: Bool = false,
        operatorKey givenOperatorKey: String? = nil,
        configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> TestVPPServer {
        var logger = Logger(label: "test.vpp")
        logger.logLevel = .critical
        var databaseConfiguration: PostgresConfiguration
        if let database {
            databaseConfiguration = database
        } else {
            databaseConfiguration = try await TestPostgres.makeDatabase(prefix: prefix, poolSize: poolSize)
        }
        databaseConfiguration.poolSize = poolSize
        let pool = PostgresPool(configuration: databaseConfiguration, logger: logger)
        let storage = Storage(pool: pool, logger: logger, tenantStateTTL: tenantStateTTL)
        try await storage.migrate(concurrency: 4)
        let operatorKey: String
        if let givenOperatorKey {
            operatorKey = givenOperatorKey
        } else {
            operatorKey = try await storage.apiKeys.create(kind: .operator, tenantID: nil, name: "test operator").secret
        }
        let authenticator = StorageAuthenticator(storage: storage, logger: logger, recheckInterval: keyRecheckInterval)
        var listener: Task<Void, any Error>?
        if listenForChanges {
            let changes = ChangeListener(configuration: databaseConfiguration, storage: storage, authenticator: authenticator, logger: logger)
            listener = Task { try await changes.run() }
        }
        var configuration = ServerConfiguration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        let server = RPCServer(
            configuration: configuration,
            router: Services.makeRouter(storage: storage, authenticator: authenticator),
            authenticator: authenticator,
            logger: logger,
            callLogLevel: .debug,
            errorMapper: ServiceErrorMapper.map
        )
        try await server.start()
        return TestVPPServer(
            database: databaseConfiguration,
            pool: pool,
            storage: storage,
            authenticator: authenticator,
            server: server,
            operatorKey: operatorKey,
            listener: listener
        )
    }

    public func client(key: String, reconnect: Bool = true) -> VPPClient {
        VPPClient(ClientConfiguration(host: "127.0.0.1", port: self.port, apiKey: key, reconnect: reconnect))
    }

    public func operatorClient() -> VPPClient {
        self.client(key: self.operatorKey)
    }

    /// Creates a tenant over RPC with a tenant key; returns the tenant and the key's secret.
    public func createTenant(
        _ name: String,
        configure: (inout VppV1.CreateTenantRequest) -> Void = { _ in }
    ) async throws -> (tenant: VppV1.Tenant, key: String) {
        var request = VppV1.CreateTenantRequest()
        request.displayName = name
        request.initialKeyName = "admin tool"
        configure(&request)
        let client = self.operatorClient()
        let response: VppV1.CreateTenantResponse
        do {
            response = try await client.call(VppV1.OperatorService.CreateTenant.self, request)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
        guard let tenant = response.tenant, let secret = response.initialKey?.secret else {
            throw RPCErrorForTests.missing("CreateTenant answered without a tenant or key")
        }
        return (tenant, secret)
    }

    public func stop() async {
        self.listener?.cancel()
        await self.server.shutdown(gracePeriod: .seconds(1))
        await self.pool.shutdown()
    }
}

public enum RPCErrorForTests: Error {
    case missing(String)
}
