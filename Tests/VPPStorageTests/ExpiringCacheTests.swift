import Testing
import VPPClock
import VPPStorage

/// The per-call caches of key and tenant states: batched, one-at-a-time re-reads (docs/performance.md). Time is the
/// cache's own clock, turned by the test.
@Suite("Expiring cache")
struct ExpiringCacheTests {
    let clock = ManualClock()
    let cache: ExpiringCache<Int, String>
    let start: ContinuousClock.Instant

    init() {
        self.cache = ExpiringCache(lifetime: .seconds(2), clock: InstantClock(self.clock))
        self.start = self.clock.now
    }

    /// Moves the clock to `milliseconds` after the test's start (never back).
    func at(_ milliseconds: Int) {
        self.clock.advance(by: self.start + .milliseconds(milliseconds) - self.clock.now)
    }

    func store(_ key: Int, at milliseconds: Int) {
        self.at(milliseconds)
        self.cache.store("\(key)", for: key)
    }

    func keys(_ key: Int, at milliseconds: Int) -> (keys: [Int], claimed: Bool)? {
        self.at(milliseconds)
        if case .read(let keys, let claimed) = self.cache.lookup(key, limit: 10) { return (keys, claimed) }
        return nil
    }

    func value(_ key: Int, at milliseconds: Int) -> String? {
        self.at(milliseconds)
        if case .value(let value) = self.cache.lookup(key, limit: 10) { return value }
        return nil
    }

    @Test(
        "an entry younger than its lifetime is used; an older one is read again with every entry past half its lifetime"
    )
    func expiredEntriesAreReadTogether() {
        store(1, at: 0)
        store(2, at: 500)
        store(3, at: 1_500)
        #expect(value(1, at: 1_999) == "1")
        #expect(cache.fresh(1) == "1")
        let read = keys(1, at: 2_000)
        #expect(read?.claimed == true)
        #expect(read?.keys.first == 1)
        #expect(Set(read?.keys ?? []) == [1, 2], "entry 3 is not past half its lifetime")
        #expect(cache.fresh(1) == nil)
        #expect(cache.fresh(3) == "3")
    }

    @Test(
        "while one batched re-read is out, expired entries are used for up to another lifetime, and unknown keys read alone"
    )
    func oneReReadAtATime() {
        store(1, at: 0)
        store(2, at: 0)
        #expect(keys(1, at: 2_500)?.claimed == true)
        // Another caller, same moment: no second batched read.
        #expect(value(2, at: 2_500) == "2")
        let unknown = keys(9, at: 2_500)
        #expect(unknown?.keys == [9])
        #expect(unknown?.claimed == false)
        // Past twice the lifetime, an entry is not used even while a re-read is out.
        let late = keys(2, at: 4_000)
        #expect(late?.keys == [2])
        #expect(late?.claimed == false)
        // Once the re-read ends, the next expired lookup claims the next one.
        cache.endRefresh()
        #expect(keys(2, at: 4_000)?.claimed == true)
    }

    @Test("a batched re-read takes at most `limit` keys, the one asked for first")
    func reReadsAreBounded() {
        for key in 0..<50 { store(key, at: 0) }
        let read = keys(42, at: 3_000)
        #expect(read?.keys.count == 10)
        #expect(read?.keys.first == 42)
    }
}
