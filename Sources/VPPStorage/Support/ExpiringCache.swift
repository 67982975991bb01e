import NIOConcurrencyHelpers
public import VPPClock

/// A small lock-protected map whose entries are trusted for `lifetime` after they were stored: the per-call caches of
/// tenant states and key states, re-read from the database once they are older than that.
///
/// Re-reads are batched and one at a time: the caller that finds its entry expired reads it together with every entry
/// past half its lifetime (`lookup`), and while that read is out, callers whose entries expired too keep the value they
/// have for up to another lifetime instead of each sending the same read (with 1,000 tenants, up to 64 calls in flight
/// found their entries expired at once and sent 64 reads of 1,000 ids: docs/performance.md).
public final class ExpiringCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    public let lifetime: Duration
    /// What entries' ages are measured on.
    let clock: InstantClock
    private let state = NIOLockedValueBox(State())

    private struct State {
        var entries: [Key: (value: Value, stored: ContinuousClock.Instant)] = [:]
        /// A batched re-read is out (see `lookup`).
        var refreshing = false
    }

    /// What a caller does for a key: use a value, or read these keys from the database and `store` them (then call
    /// `endRefresh` if `claimed`).
    public enum Lookup: Sendable {
        case value(Value)
        /// `keys` starts with the key asked for. `claimed`: this caller's read is the batched re-read, ended with
        /// `endRefresh` whatever its outcome.
        case read(keys: [Key], claimed: Bool)
    }

    public init(lifetime: Duration, clock: InstantClock = .continuous) {
        self.lifetime = lifetime
        self.clock = clock
    }

    /// The value stored for `key` less than `lifetime` ago (or less than twice that while a batched re-read is out);
    /// else the keys to read: `key` and, unless a batched re-read is out already, up to `limit - 1` other entries past
    /// half their lifetime.
    public func lookup(_ key: Key, limit: Int = 1000) -> Lookup {
        let now = self.clock.now
        let lifetime = self.lifetime
        return self.state.withLockedValue { state in
            if let entry = state.entries[key] {
                let age = now - entry.stored
                if age < lifetime || (state.refreshing && age < lifetime * 2) { return .value(entry.value) }
            }
            guard !state.refreshing else { return .read(keys: [key], claimed: false) }
            state.refreshing = true
            var keys = [key]
            for (other, entry) in state.entries
            where keys.count < limit && other != key && now - entry.stored >= lifetime / 2 {
                keys.append(other)
            }
            return .read(keys: keys, claimed: true)
        }
    }

    /// Ends the batched re-read claimed by `lookup`.
    public func endRefresh() {
        self.state.withLockedValue { $0.refreshing = false }
    }

    /// The value stored for `key` less than `lifetime` ago, if any.
    public func fresh(_ key: Key) -> Value? {
        guard let entry = self.state.withLockedValue({ $0.entries[key] }), self.clock.now - entry.stored < self.lifetime
        else { return nil }
        return entry.value
    }

    public func store(_ value: Value, for key: Key) {
        let now = self.clock.now
        self.state.withLockedValue { $0.entries[key] = (value, now) }
    }

    public func remove(_ key: Key) {
        _ = self.state.withLockedValue { $0.entries.removeValue(forKey: key) }
    }

    public func removeAll() {
        self.state.withLockedValue { $0.entries.removeAll() }
    }
}
