import Testing
@testable import VPPStorage

/// The per-call caches of key and tenant states: batched, one-at-a-time re-reads (docs/performance.md).
@Suite("Expiring cache")
struct ExpiringCacheTests {
    let start = ContinuousClock.now
    func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }

    func keys(_ lookup: ExpiringCache<Int, String>.Lookup) -> (keys: [Int], claimed: Bool)? {
        if case .read(let keys, let claimed) = lookup { return (keys, claimed) }
        return nil
    }

    func value(_ lookup: ExpiringCache<Int, String>.Lookup) -> String? {
        if case .value(let value) = lookup { return value }
        return nil
    }

    @Test("an entry younger than its lifetime is used; an older one is read again with every entry past half its lifetime")
    func expiredEntriesAreReadTogether() {
        let cache = ExpiringCache<Int, String>(lifetime: .seconds(2))
        cache.store("one", for: 1, at: at(0))
        cache.store("two", for: 2, at: at(500))
        cache.store("three", for: 3, at: at(1_500))
        #expect(value(cache.lookup(1, limit: 10, now: at(1_999))) == "one")
        let read = keys(cache.lookup(1, limit: 10, now: at(2_000)))
        #expect(read?.claimed == true)
        #expect(read?.keys.first == 1)
        #expect(Set(read?.keys ?? []) == [1, 2], "entry 3 is not past half its lifetime")
    }

    @Test("while one batched re-read is out, expired entries are used for up to another lifetime, and unknown keys read alone")
    func oneReReadAtATime() {
        let cache = ExpiringCache<Int, String>(lifetime: .seconds(2))
        cache.store("one", for: 1, at: at(0))
        cache.store("two", for: 2, at: at(0))
        #expect(keys(cache.lookup(1, limit: 10, now: at(2_500)))?.claimed == true)
        // Another caller, same moment: no second batched read.
        #expect(value(cache.lookup(2, limit: 10, now: at(2_500))) == "two")
        let unknown = keys(cache.lookup(9, limit: 10, now: at(2_500)))
        #expect(unknown?.keys == [9])
        #expect(unknown?.claimed == false)
        // Past twice the lifetime, an entry is not used even while a re-read is out.
        let late = keys(cache.lookup(2, limit: 10, now: at(4_000)))
        #expect(late?.keys == [2])
        #expect(late?.claimed == false)
        // Once the re-read ends, the next expired lookup claims the next one.
        cache.endRefresh()
        #expect(keys(cache.lookup(2, limit: 10, now: at(4_000)))?.claimed == true)
    }

    @Test("a batched re-read takes at most `limit` keys, the one asked for first")
    func reReadsAreBounded() {
        let cache = ExpiringCache<Int, String>(lifetime: .seconds(2))
        for key in 0..<50 { cache.store("\(key)", for: key, at: at(0)) }
        let read = keys(cache.lookup(42, limit: 10, now: at(3_000)))
        #expect(read?.keys.count == 10)
        #expect(read?.keys.first == 42)
    }
}
