import CLibPQ

/// Batches of scoped reads in one round trip (`PostgresPool.scopedRead`), sent as `ScopedReadPlanner` plans them.
extension PostgresConnection {
    enum ScopedReadOutcome {
        case rows(PostgresRows)
        case failed(PostgresError)
        /// Not run: an earlier read of the batch failed, which ends the batch. Safe to run again.
        case notRun
    }

    /// Runs several scoped reads in one round trip: an empty search path if the session comes from other work, then
    /// for each read its `enter` statements when the session is not in its scope already, then its query (prepared
    /// once per scope and SQL text); all in libpq's pipeline mode and one implicit transaction, ended by one sync
    /// (`ScopedReadPlanner` decides the statements). The session is in each read's scope when its query runs, whatever
    /// the reads before it did: a failure anywhere aborts the rest of the batch (`notRun`) and rolls back every scope
    /// set in it, so no query can run in a scope it did not ask for. Reads have no effects, so the rows of the reads
    /// before a failure stand. Leaves `sessionScope` at the last read's scope, or `unknown` after a failure.
    func executeScopedReads(_ reads: [ScopedRead]) -> [ScopedReadOutcome] {
        var outcomes = [ScopedReadOutcome](repeating: .notRun, count: reads.count)
        guard let conn else {
            return outcomes.map { _ in .failed(.connectionFailure("the connection is closed", sqlState: "08003")) }
        }
        // Reads that cannot be sent fail on their own, before anything goes out.
        var runnable: [Int] = []
        for (index, read) in reads.enumerated() {
            if let problem = Self.problem(sending: read) {
                outcomes[index] = .failed(problem)
            } else {
                runnable.append(index)
            }
        }
        lastBatchEntries = 0
        guard !runnable.isEmpty else { return outcomes }

        let previousScope = sessionScope
        sessionScope = .unknown
        let idle = transactionStatus == .idle
        if let eviction = statements.eviction(makingRoomFor: runnable.count, sessionIsIdle: idle) {
            do {
                _ = try consume(PQexec(conn, eviction.names.map { "DEALLOCATE \($0)" }.joined(separator: "; ")))
                statements.evicted(eviction)
            } catch {
                // Some went, some maybe not: start over.
                do {
                    _ = try consume(PQexec(conn, "DEALLOCATE ALL"))
                    statements.deallocatedAll()
                } catch {
                    return outcomes.map { if case .failed = $0 { $0 } else { .failed(error) } }
                }
            }
        }
        guard PQenterPipelineMode(conn) == 1 else {
            let error = currentConnectionError()
            return outcomes.map { if case .failed = $0 { $0 } else { .failed(error) } }
        }
        let plan = ScopedReadPlanner.plan(
            reads,
            runnable: runnable,
            sessionScope: previousScope,
            statements: &statements
        )
        lastBatchEntries = plan.entries
        var sent = true
        for step in plan.steps where sent {
            let query = reads[step.read].query
            switch step.statement {
            case .clearSearchPath:
                sent = PQsendQueryParams(conn, "SET search_path TO ''", 0, nil, nil, nil, nil, 0) == 1
            case .enter(let sql):
                sent = PQsendQueryParams(conn, sql, 0, nil, nil, nil, nil, 0) == 1
            case .prepare(let name):
                let types = query.binds.map(\.type.oid)
                sent = PQsendPrepare(conn, name, query.sql, Int32(types.count), types) == 1
            case .query(let name):
                sent = Self.send(query, prepared: name, on: conn)
            }
        }
        guard sent, PQpipelineSync(conn) == 1 else {
            let error = currentConnectionError()
            // The connection is in an unknown state: closing it makes the pool replace it.
            close()
            return outcomes.map { if case .failed = $0 { $0 } else { .failed(error) } }
        }

        var failed = false
        for step in plan.steps {
            let (rows, failure) = self.readPipelinedResult(conn)
            if isBroken {
                let error = currentConnectionError()
                return outcomes.map { if case .rows = $0 { $0 } else { .failed(error) } }
            }
            if let failure {
                failed = true
                outcomes[step.read] = .failed(failure)
                // A cached statement that is gone or whose plan no longer fits its tables is prepared afresh next time.
                if StatementCache.invalidatesStatement(sqlState: failure.sqlState), let key = plan.keys[step.read] {
                    statements.forgetScoped(key)
                }
            } else if step.isQuery, !failed, let rows, case .notRun = outcomes[step.read] {
                outcomes[step.read] = .rows(rows)
            }
        }
        Self.readPipelineSync(conn)
        PQexitPipelineMode(conn)
        if isBroken {
            let error = currentConnectionError()
            return outcomes.map { if case .rows = $0 { $0 } else { .failed(error) } }
        }
        if failed {
            // Statements that were prepared before the failure still exist (Parse is not undone by the rollback).
            if transactionStatus == .idle {
                for name in plan.newStatements.values { _ = try? consume(PQexec(conn, "DEALLOCATE \(name)")) }
            }
        } else {
            for (key, name) in plan.newStatements { statements.preparedScoped(key, as: name) }
            sessionScope = plan.finalScope
        }
        return outcomes
    }

    /// Why a scoped read cannot be sent, if it cannot.
    private static func problem(sending read: ScopedRead) -> PostgresError? {
        if let problem = Self.problem(sending: read.query) { return problem }
        if read.enter.contains(where: { $0.containsNUL }) {
            return PostgresError(kind: .invalidArgument, message: "SQL text must not contain NUL")
        }
        return nil
    }
}
