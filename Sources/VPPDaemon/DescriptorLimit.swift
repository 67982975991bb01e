#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The process's file-descriptor limit, and how many RPC connections it leaves room for (issue 16).
///
/// Below `--max-connections` the server would stop accepting silently once descriptors ran out (clients hanging, sync
/// jobs failing with "Too many open files"). At start-up the soft limit is raised to the hard one, and the connection
/// limit is capped to what the descriptors allow once the database pool, Apple's HTTP connections, the listeners and
/// files have theirs; past the cap, clients are told CONNECTION_LIMIT.
struct DescriptorLimit: Equatable {
    var soft: Int
    var hard: Int

    /// Descriptors kept for everything but RPC connections: each database connection (and its listener), Apple's
    /// connections, the RPC and metrics listeners, the event loops' own, log and cluster files, with room to spare.
    static func reserve(databasePoolSize: Int) -> Int { 2 * databasePoolSize + 256 }

    /// Raises the soft limit to the hard one (as far as the kernel allows) and returns the limit in force.
    static func raise() -> DescriptorLimit? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        // RLIM_INFINITY is the all-ones value: anything past Int32.max counts as that much.
        func clamp(_ value: rlim_t) -> Int { value > rlim_t(Int32.max) ? Int(Int32.max) : Int(value) }
        return DescriptorLimit(soft: clamp(limit.rlim_cur), hard: clamp(limit.rlim_max))
    }

    /// The connection limit these descriptors allow: `configured`, or fewer (at least 1).
    func connectionLimit(configured: Int, databasePoolSize: Int) -> Int {
        min(configured, max(1, self.soft - Self.reserve(databasePoolSize: databasePoolSize)))
    }
}
