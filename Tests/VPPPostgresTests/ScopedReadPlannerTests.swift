import Testing

@testable import VPPPostgres

/// `ScopedReadPlanner`: what a batch of scoped reads sends, in which order (no server).
@Suite("Scoped read planner")
struct ScopedReadPlannerTests {
    private static let enterA = ["SET ROLE a", "SET search_path TO s_a"]
    private static let enterB = ["SET ROLE b", "SET search_path TO s_b"]

    private func read(_ scope: String, _ query: PostgresQuery = "SELECT v FROM t") -> ScopedRead {
        ScopedRead(scope: scope, enter: scope == "a" ? Self.enterA : Self.enterB, query: query)
    }

    private func plan(
        _ reads: [ScopedRead],
        from scope: SessionScope,
        cache: inout StatementCache
    ) -> ScopedReadPlan {
        ScopedReadPlanner.plan(reads, runnable: Array(reads.indices), sessionScope: scope, statements: &cache)
    }

    @Test("from other work: an empty search path, the scope's enter statements, then the query prepared and run")
    func aReadFromOtherWorkEntersItsScope() {
        var cache = StatementCache()
        let plan = plan([read("a")], from: .none, cache: &cache)
        #expect(
            plan.steps == [
                .init(read: 0, statement: .clearSearchPath),
                .init(read: 0, statement: .enter("SET ROLE a")),
                .init(read: 0, statement: .enter("SET search_path TO s_a")),
                .init(read: 0, statement: .prepare("vpp_1")),
                .init(read: 0, statement: .query("vpp_1")),
            ]
        )
        #expect(plan.entries == 1)
        #expect(plan.finalScope == .scoped("a"))
        #expect(plan.newStatements.values.sorted() == ["vpp_1"])
        #expect(cache.scopedCount == 0, "new statements are cached by the caller once the batch succeeded")
    }

    @Test("after a failed batch (unknown scope) the search path is emptied and the scope entered again")
    func anUnknownScopeIsEnteredAgain() {
        var cache = StatementCache()
        let plan = plan([read("a")], from: .unknown, cache: &cache)
        #expect(plan.steps.first == .init(read: 0, statement: .clearSearchPath))
        #expect(plan.entries == 1)
    }

    @Test("in the session's scope already: no scope statements, and a statement cached in the scope is only run")
    func aReadInTheSessionsScopeIsOneStatement() {
        var cache = StatementCache()
        let first = plan([read("a")], from: .none, cache: &cache)
        for (key, name) in first.newStatements { cache.preparedScoped(key, as: name) }
        let second = plan([read("a")], from: first.finalScope, cache: &cache)
        #expect(second.steps == [.init(read: 0, statement: .query("vpp_1"))])
        #expect(second.entries == 0)
        #expect(second.newStatements.isEmpty)
        #expect(second.finalScope == .scoped("a"))
    }

    @Test("reads of the session's scope first, then by scope, each scope's in arrival order: each scope entered once")
    func readsAreGroupedByScope() {
        let reads = [read("b"), read("a"), read("b"), read("a")]
        #expect(ScopedReadPlanner.order([0, 1, 2, 3], of: reads, sessionScope: .scoped("b")) == [0, 2, 1, 3])
        #expect(ScopedReadPlanner.order([0, 1, 2, 3], of: reads, sessionScope: .none) == [1, 3, 0, 2])
        #expect(ScopedReadPlanner.order([3, 2], of: reads, sessionScope: .none) == [3, 2], "only the runnable reads")

        var cache = StatementCache()
        let plan = plan(reads, from: .scoped("b"), cache: &cache)
        #expect(plan.entries == 1, "only scope a is entered")
        #expect(plan.steps.map(\.read) == [0, 0, 2, 1, 1, 1, 1, 3])
        #expect(plan.steps.filter { if case .enter = $0.statement { true } else { false } }.map(\.read) == [1, 1])
        #expect(plan.finalScope == .scoped("a"))
    }

    @Test("one statement per scope and SQL text: reads of a batch share it, another scope prepares its own")
    func statementsArePreparedOncePerScope() {
        var cache = StatementCache()
        let plan = plan([read("a"), read("a"), read("b"), read("a", "SELECT 2")], from: .none, cache: &cache)
        let prepares = plan.steps.compactMap { step -> String? in
            if case .prepare(let name) = step.statement { return name }
            return nil
        }
        let queries = plan.steps.compactMap { step -> String? in
            if case .query(let name) = step.statement { return name }
            return nil
        }
        #expect(prepares.count == 3, "a's two reads of one SQL text share one statement")
        #expect(queries.count == 4)
        #expect(Set(queries) == Set(prepares))
        #expect(plan.keys[0] == plan.keys[1])
        #expect(plan.keys[0] != plan.keys[2], "the same SQL in scope b is another statement")
        #expect(plan.newStatements.count == 3)
    }

    @Test("a statement cached in its scope is reused and counts as used, so it is evicted last")
    func cachedStatementsAreMarkedUsed() {
        var cache = StatementCache(scopedLimit: 4)
        for scope in ["a", "b", "c", "d"] {
            let plan = plan([read(scope)], from: .none, cache: &cache)
            for (key, name) in plan.newStatements { cache.preparedScoped(key, as: name) }
        }
        // Read in scope a again: b is now the least recently used.
        _ = plan([read("a")], from: .none, cache: &cache)
        #expect(cache.eviction(makingRoomFor: 1, sessionIsIdle: true)?.names == ["vpp_2"])
    }
}
