import Testing

@testable import VPPPostgres

/// `StatementCache`: which statements a session prepares, reuses and deallocates (no server).
@Suite("Statement cache")
struct StatementCacheTests {
    typealias Key = StatementCache.Key

    private static let select = Key(sql: "SELECT $1", types: [23])

    private func scoped(_ scope: String, _ sql: String = "SELECT 1") -> StatementCache.ScopedKey {
        .init(scope: scope, statement: Key(sql: sql, types: []))
    }

    @Test("a new statement is prepared under a fresh name and reused once prepared; other parameter types are another")
    func aStatementIsPreparedOnceAndReused() {
        var cache = StatementCache()
        #expect(cache.statement(Self.select, sessionIsIdle: true) == .prepare("vpp_1", deallocatingAllFirst: false))
        cache.prepared(Self.select, as: "vpp_1")
        #expect(cache.statement(Self.select, sessionIsIdle: true) == .reuse("vpp_1"))
        #expect(cache.statement(Self.select, sessionIsIdle: false) == .reuse("vpp_1"))
        let asText = Key(sql: "SELECT $1", types: [25])
        #expect(cache.statement(asText, sessionIsIdle: true) == .prepare("vpp_2", deallocatingAllFirst: false))
        #expect(cache.sessionCount == 1, "a statement counts once it is prepared")
    }

    @Test("a statement whose preparation was not reported, or that was forgotten, is prepared again under a new name")
    func namesAreNeverUsedTwice() {
        var cache = StatementCache()
        #expect(cache.statement(Self.select, sessionIsIdle: true) == .prepare("vpp_1", deallocatingAllFirst: false))
        // The prepare failed: nothing was reported.
        #expect(cache.statement(Self.select, sessionIsIdle: true) == .prepare("vpp_2", deallocatingAllFirst: false))
        cache.prepared(Self.select, as: "vpp_2")
        cache.forget(Self.select)
        #expect(cache.statement(Self.select, sessionIsIdle: true) == .prepare("vpp_3", deallocatingAllFirst: false))
        // Scoped statements draw from the same names.
        #expect(cache.newName() == "vpp_4")
    }

    @Test("a full cache starts over with DEALLOCATE ALL outside a transaction, which empties both caches")
    func aFullCacheStartsOver() {
        var cache = StatementCache(sessionLimit: 2, scopedLimit: 8)
        for sql in ["SELECT 1", "SELECT 2"] {
            let key = Key(sql: sql, types: [])
            let decision = cache.statement(key, sessionIsIdle: true)
            guard case .prepare(let name, deallocatingAllFirst: false) = decision else {
                Issue.record("expected a plain prepare below the limit")
                return
            }
            cache.prepared(key, as: name)
        }
        cache.preparedScoped(scoped("a"), as: cache.newName())
        let third = Key(sql: "SELECT 3", types: [])
        // Inside a transaction, DEALLOCATE ALL would drop what the transaction prepared: the cache grows instead.
        #expect(cache.statement(third, sessionIsIdle: false) == .prepare("vpp_4", deallocatingAllFirst: false))
        #expect(cache.statement(third, sessionIsIdle: true) == .prepare("vpp_5", deallocatingAllFirst: true))
        #expect(cache.sessionCount == 2, "nothing is forgotten before DEALLOCATE ALL succeeded")
        cache.deallocatedAll()
        #expect(cache.sessionCount == 0)
        #expect(cache.scopedCount == 0)
        #expect(
            cache.statement(Key(sql: "SELECT 1", types: []), sessionIsIdle: true)
                == .prepare("vpp_6", deallocatingAllFirst: false)
        )
    }

    @Test("a statement that is gone (26000) or whose plan broke (0A000) is prepared afresh; other errors keep it")
    func invalidatingErrors() {
        #expect(StatementCache.invalidatesStatement(sqlState: "26000"))
        #expect(StatementCache.invalidatesStatement(sqlState: "0A000"))
        #expect(!StatementCache.invalidatesStatement(sqlState: "42P01"))
        #expect(!StatementCache.invalidatesStatement(sqlState: "22012"))
        #expect(!StatementCache.invalidatesStatement(sqlState: nil))
    }

    @Test("scoped statements are per scope and SQL text, and separate from the session's")
    func scopedStatementsArePerScope() {
        var cache = StatementCache()
        #expect(cache.useScoped(scoped("a")) == nil)
        cache.preparedScoped(scoped("a"), as: "vpp_1")
        #expect(cache.useScoped(scoped("a")) == "vpp_1")
        #expect(cache.useScoped(scoped("b")) == nil, "the same SQL in another scope is another statement")
        #expect(cache.useScoped(scoped("a", "SELECT 2")) == nil)
        #expect(cache.sessionCount == 0)
        cache.forgetScoped(scoped("a"))
        #expect(cache.useScoped(scoped("a")) == nil)
        #expect(cache.scopedCount == 0)
    }

    @Test("past the scoped limit, the least recently used quarter is deallocated, outside transactions only")
    func theLeastRecentlyUsedScopedStatementsAreEvicted() {
        var cache = StatementCache(scopedLimit: 8)
        for scope in 0..<8 {
            cache.preparedScoped(scoped("s\(scope)"), as: "name_\(scope)")
            _ = cache.useScoped(scoped("s\(scope)"))
        }
        // Scopes 0 and 1 are used again: 2 and 3 are now the least recently used.
        _ = cache.useScoped(scoped("s0"))
        _ = cache.useScoped(scoped("s1"))
        #expect(cache.eviction(makingRoomFor: 0, sessionIsIdle: true) == nil, "no batch, no room needed")
        #expect(cache.eviction(makingRoomFor: 1, sessionIsIdle: false) == nil)
        guard let eviction = cache.eviction(makingRoomFor: 1, sessionIsIdle: true) else {
            Issue.record("expected an eviction past the limit")
            return
        }
        #expect(eviction.names == ["name_2", "name_3"])
        #expect(cache.scopedCount == 8, "nothing is forgotten before the DEALLOCATE succeeded")
        cache.evicted(eviction)
        #expect(cache.scopedCount == 6)
        #expect(cache.useScoped(scoped("s2")) == nil)
        #expect(cache.useScoped(scoped("s3")) == nil)
        #expect(cache.useScoped(scoped("s0")) == "name_0")
        #expect(cache.useScoped(scoped("s4")) == "name_4")
    }
}
