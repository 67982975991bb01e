import NIOConcurrencyHelpers

/// A small lock-protected map whose entries are trusted for `lifetime` after they were stored: the per-call caches of
/// tenant states and key states, re-read from the database once they are older than that.
public final class ExpiringCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    public let lifetime: Duration
    private let entries = NIOLockedValueBox<[Key: (value: Value, stored: ContinuousClock.Instant)]>([:])

    public init(lifetime: Duration) {
        self.lifetime = lifetime
    }

    /// The value stored for `key` less than `lifetime` ago, if any.
    public func fresh(_ key: Key) -> Value? {
        guard let entry = self.entries.withLockedValue({ $0[key] }), ContinuousClock.now - entry.stored < self.lifetime
        else { return nil }
        return entry.value
    }

    /// The keys whose entries were stored at least `age` ago (expired ones included), to refresh them together.
    public func keys(storedBefore age: Duration) -> [Key] {
        let now = ContinuousClock.now
        return self.entries.withLockedValue { entries in
            entries.compactMap { now - $0.value.stored >= age ? $0.key : nil }
        }
    }

    public func store(_ value: Value, for key: Key) {
        self.entries.withLockedValue { $0[key] = (value, ContinuousClock.now) }
    }

    public func remove(_ key: Key) {
        _ = self.entries.withLockedValue { $0.removeValue(forKey: key) }
    }

    public func removeAll() {
        self.entries.withLockedValue { $0.removeAll() }
    }
}
