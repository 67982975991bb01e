/// A read in a scope, as `PostgresPool.scopedRead` queues it.
struct ScopedRead {
    /// Names what `enter` sets: two different `enter`s have two different scopes.
    var scope: String
    /// Statements without parameters that set the scope (`SET ROLE …`, `SET search_path …`).
    var enter: [String]
    var query: PostgresQuery
}

/// The role and search path a session runs with outside transactions. A scoped read (`PostgresPool.scopedRead`)
/// leaves them set for its scope, so the next read in the same scope on the connection is one statement; every other
/// use of the connection resets them first.
enum SessionScope: Equatable {
    /// The login role and the default search path.
    case none
    /// Set for this scope by a scoped read that succeeded.
    case scoped(String)
    /// A scoped read failed part-way: whatever is set must be reset before the next use.
    case unknown
}

/// What one batch of scoped reads sends, in order (`ScopedReadPlanner.plan`).
struct ScopedReadPlan: Equatable {
    enum Statement: Equatable {
        /// `SET search_path TO ''`, when the session comes from other work (or a failed batch).
        case clearSearchPath
        /// One of the read's `enter` statements, sent as it is.
        case enter(String)
        /// Prepare the read's query under this name (new in its scope on this connection).
        case prepare(String)
        /// Run the read's query as the prepared statement of this name.
        case query(String)
    }

    /// A statement, with the index of the read it belongs to.
    struct Step: Equatable {
        var read: Int
        var statement: Statement

        /// Whether this is the read's query, whose rows are the read's result.
        var isQuery: Bool {
            if case .query = statement { return true }
            return false
        }
    }

    var steps: [Step]
    /// The statements this batch prepares: cached if the batch succeeds, deallocated if it fails (a Parse is not
    /// undone by the rollback).
    var newStatements: [StatementCache.ScopedKey: String]
    /// Each read's statement, by the read's index.
    var keys: [Int: StatementCache.ScopedKey]
    /// How many reads send their `enter` statements (the others find their scope set).
    var entries: Int
    /// The session's scope once the batch has succeeded: the last read's.
    var finalScope: SessionScope
}

/// Plans a batch of scoped reads without libpq: in which order the reads go, which statements set their scopes, and
/// which of their queries are prepared or reused. `PostgresConnection.executeScopedReads` sends the plan in libpq's
/// pipeline mode, in one implicit transaction ended by one sync, and reads the results.
///
/// - The session is in each read's scope when its query runs, whatever the reads before it did: a session that comes
///   from other work (or a failed batch) first gets an empty search path, which the reads' own `enter` may replace.
///   (PostgreSQL recomputes the search path after every change of role, and with the default path, `"$user", public`,
///   that was a catalog look-up and a privilege check per read.)
/// - Reads of the same scope go together, those of the session's scope first, each scope's in the order they came:
///   each scope is entered once.
/// - A query new to its scope is prepared in the pipeline after its scope is set: its table names resolve in the
///   read's search path. One statement per scope and SQL text, even when several reads of the batch share it.
enum ScopedReadPlanner {
    /// The order the reads `runnable` (indices into `reads`) go in.
    static func order(_ runnable: [Int], of reads: [ScopedRead], sessionScope: SessionScope) -> [Int] {
        runnable.sorted { first, second in
            let firstHere = sessionScope == .scoped(reads[first].scope)
            let secondHere = sessionScope == .scoped(reads[second].scope)
            if firstHere != secondHere { return firstHere }
            return (reads[first].scope, first) < (reads[second].scope, second)
        }
    }

    /// The plan for the reads `runnable` (indices into `reads`, at least one) on a session in `sessionScope`. Names
    /// new statements and marks the cached ones used in `statements`; the caller caches the new ones once the batch
    /// has succeeded.
    static func plan(
        _ reads: [ScopedRead],
        runnable: [Int],
        sessionScope: SessionScope,
        statements: inout StatementCache
    ) -> ScopedReadPlan {
        let ordered = order(runnable, of: reads, sessionScope: sessionScope)
        var plan = ScopedReadPlan(steps: [], newStatements: [:], keys: [:], entries: 0, finalScope: sessionScope)
        guard let first = ordered.first else { return plan }
        if case .scoped = sessionScope {
        } else {
            plan.steps.append(.init(read: first, statement: .clearSearchPath))
        }
        var scope = sessionScope
        for index in ordered {
            let read = reads[index]
            if scope != .scoped(read.scope) {
                plan.entries += 1
                for sql in read.enter { plan.steps.append(.init(read: index, statement: .enter(sql))) }
                scope = .scoped(read.scope)
            }
            let statement = StatementCache.Key(sql: read.query.sql, types: read.query.binds.map(\.type.oid))
            let key = StatementCache.ScopedKey(scope: read.scope, statement: statement)
            plan.keys[index] = key
            let name: String
            if let cached = statements.useScoped(key) {
                name = cached
            } else if let new = plan.newStatements[key] {
                name = new
            } else {
                name = statements.newName()
                plan.newStatements[key] = name
                plan.steps.append(.init(read: index, statement: .prepare(name)))
            }
            plan.steps.append(.init(read: index, statement: .query(name)))
        }
        plan.finalScope = scope
        return plan
    }
}
