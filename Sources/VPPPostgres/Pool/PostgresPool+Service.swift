public import ServiceLifecycle

/// The pool as a `Service` of a `ServiceGroup`: it works from `init` on (connections open lazily), and `run()` only
/// waits for the end. List it before the services that use it, so that the group, which shuts its services down in
/// the reverse order of the list, closes it after them.
extension PostgresPool: Service {
    /// Runs until graceful shutdown or cancellation, then shuts the pool down with `shutdown()`: the same one code
    /// path as an explicit call, so calling both is harmless.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }
}
