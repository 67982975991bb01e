/// The clock the server's timers read and sleep on: `ContinuousClock` in production, a `ManualClock` in tests that
/// are about time (a lease, a schedule's tick, a cache's lifetime), so they turn time instead of waiting for it.
///
/// It erases the clock it wraps but keeps `ContinuousClock.Instant` as its instant, so the types that take one
/// (`JobWorker`, `SyncScheduler`, `ExpiringCache`, …) store and compare instants as before; any `Clock` whose instant
/// is `ContinuousClock.Instant` can be wrapped.
public struct InstantClock: Clock, Sendable {
    public typealias Instant = ContinuousClock.Instant

    private let readNow: @Sendable () -> Instant
    private let sleeper: @Sendable (Instant, Duration?) async throws -> Void
    public let minimumResolution: Duration

    public init<Wrapped: Clock & Sendable>(_ clock: Wrapped) where Wrapped.Instant == ContinuousClock.Instant {
        self.readNow = { clock.now }
        self.sleeper = { deadline, tolerance in try await clock.sleep(until: deadline, tolerance: tolerance) }
        self.minimumResolution = clock.minimumResolution
    }

    /// The real, monotonic clock.
    public static let continuous = InstantClock(ContinuousClock())

    public var now: Instant { self.readNow() }

    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try await self.sleeper(deadline, tolerance)
    }
}
