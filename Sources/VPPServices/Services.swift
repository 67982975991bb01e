public import VPPServer
public import VPPStorage

/// Builds the dispatch table of every service this server version implements. Methods declared in Protos/ and not
/// registered here answer UNIMPLEMENTED.
public enum Services {
    public static func makeRouter(storage: Storage, authenticator: StorageAuthenticator) -> RPCRouter {
        var router = RPCRouter()
        router.registerSystemService()
        OperatorService(storage: storage, authenticator: authenticator).register(into: &router)
        TenantAuditService(storage: storage).register(into: &router)
        return router
    }
}
