import Atomics
public import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import VPPLogKeys

/// A pool of libpq connections for async callers.
///
/// libpq blocks, so every call into it runs on the pool's own threads (an `NIOThreadPool` with one
/// thread per connection), never on an event loop or the cooperative pool. A connection is leased
/// to one caller at a time, so it is used by one thread at a time. Connections open lazily; one
/// that broke (server restart, `pg_terminate_backend`) is noticed when it is next leased or used,
/// closed, and replaced by a new connection, after a short backoff if connecting fails.
///
/// The decisions (which slot, who waits, when to connect again, which scoped reads go in a batch) are
/// `PoolStateMachine`'s; the pool carries them out under its lock. It works from `init` on and ends with
/// `shutdown()`, or as a `Service` of a `ServiceGroup` (`run()`) whose end shuts it down.
public final class PostgresPool: Sendable {
    public let configuration: PostgresConfiguration
    let logger: Logger
    private let threads: NIOThreadPool
    private let state: NIOLockedValueBox<State>
    private let scopeEntries = ManagedAtomic<Int>(0)
    private let readBatches = ManagedAtomic<Int>(0)

    private struct State {
        /// The slots, the waiters' order, the reconnect backoff and the queue of scoped reads.
        var machine: PoolStateMachine<PostgresConnection, Int, PendingRead>
        var waiting: [Int: Waiter] = [:]
        var nextWaiterID = 0
        var drained: CheckedContinuation<Void, Never>?
        var threadsStopped = false
        /// The one run of `shutDownOnce()`, which every call of `shutdown()` awaits.
        var shutdown: Task<Void, Never>?
    }

    private struct PendingRead {
        var read: ScopedRead
        var continuation: CheckedContinuation<PostgresRows, any Error>
    }

    /// At most this many reads go in one round trip.
    static let maxReadBatch = 32

    private struct Waiter {
        var continuation: CheckedContinuation<PostgresConnection?, any Error>
        /// Fails the waiter with `poolTimeout`; cancelled when the waiter is served.
        /// A timer on an event loop rather than a sleeping task: most leases wait under load, and a task and a
        /// Dispatch timer for each cost more than the lease (perf).
        var timer: Scheduled<Void>
    }

    public init(configuration: PostgresConfiguration, logger: Logger = Logger(label: "vpp.postgres")) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: LogKey.database] = "\(configuration.database)"
        self.logger = logger
        // One runner per core: on 2 cores, 1, 2, 4 and 8 runners read 15.0k, 14.7–15.8k, 13.8k and 12.0k times a
        // second (docs/performance.md): fewer runners make bigger batches, so fewer hand-overs and round trips.
        let machine = PoolStateMachine<PostgresConnection, Int, PendingRead>(
            size: max(1, configuration.poolSize),
            readRunnerLimit: min(max(1, configuration.poolSize), max(2, System.coreCount)),
            maxReadBatch: Self.maxReadBatch
        )
        self.threads = NIOThreadPool(numberOfThreads: max(1, configuration.poolSize))
        self.threads.start()
        self.state = NIOLockedValueBox(State(machine: machine))
    }

    deinit {
        let stop = state.withLockedValue { state -> Bool in
            defer { state.threadsStopped = true }
            return !state.threadsStopped
        }
        if stop { threads.shutdownGracefully { _ in } }
    }

    // MARK: Queries

    /// Runs one statement on a pooled connection, outside any explicit transaction.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await withConnection { try await $0.query(query) }
    }

    /// Runs SQL text without parameters, possibly several statements (a DDL script).
    @discardableResult
    public func simpleQuery(_ sql: String) async throws -> PostgresRows {
        try await withConnection { try await $0.simpleQuery(sql) }
    }

    /// Sends a notification to the listeners of `channel` (`SELECT pg_notify($1, $2)`).
    public func notify(channel: String, payload: String = "") async throws {
        try validateChannelName(channel)
        try await query("SELECT pg_notify(\(channel), \(payload))")
    }

    /// Inserts many rows fast with `COPY … FROM STDIN`; returns the number of rows copied.
    @discardableResult
    public func copyIn(
        schema: String? = nil,
        table: String,
        columns: [String],
        rows: [[(any PostgresEncodable)?]]
    ) async throws -> Int {
        try await withConnection { try await $0.copyIn(schema: schema, table: table, columns: columns, rows: rows) }
    }

    /// Leases a connection for several statements (not a transaction unless you begin one; any
    /// transaction left open is rolled back when `body` returns).
    public func withConnection<Result>(
        _ body: (PostgresConnectionHandle) async throws -> Result
    ) async throws -> Result {
        let connection = try await lease()
        let handle = PostgresConnectionHandle(connection: connection, pool: self)
        let result: Result
        do {
            result = try await body(handle)
        } catch {
            handle.invalidate()
            await release(connection)
            throw error
        }
        handle.invalidate()
        await release(connection)
        return result
    }

    // MARK: Transactions

    public enum IsolationLevel: String, Sendable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    /// Runs `body` in a transaction: `BEGIN`, then `COMMIT` if it returns or `ROLLBACK` if it
    /// throws. On a serialization failure or deadlock (from the body or from `COMMIT`), the whole
    /// body runs again, up to `maxAttempts` times, after a short jittered backoff; so `body` must
    /// only have effects inside the database, or be safe to repeat.
    ///
    /// - Parameter statementTimeout: overrides the pool's default for this transaction only.
    public func transaction<Result>(
        isolation: IsolationLevel = .readCommitted,
        maxAttempts: Int = 5,
        statementTimeout: Duration? = nil,
        _ body: (PostgresTransaction) async throws -> Result
    ) async throws -> Result {
        var attempt = 1
        while true {
            do {
                return try await withConnection { connection in
                    try await connection.simpleQuery("BEGIN ISOLATION LEVEL \(isolation.rawValue)")
                    let transaction = PostgresTransaction(connection: connection, attempt: attempt)
                    do {
                        if let statementTimeout {
                            try await transaction.setLocal("statement_timeout", "\(statementTimeout.wholeMilliseconds)")
                        }
                        let result = try await body(transaction)
                        let commit = try await connection.simpleQuery("COMMIT")
                        if commit.commandTag == "ROLLBACK" {
                            // PostgreSQL ends a failed transaction with ROLLBACK even when asked to
                            // commit: a statement failed and the body carried on.
                            throw PostgresError(
                                kind: .other,
                                sqlState: "25P02",
                                message: "the transaction was rolled back because a statement in it failed"
                            )
                        }
                        return result
                    } catch {
                        if connection.connection.transactionStatus != .idle {
                            _ = try? await connection.simpleQuery("ROLLBACK")
                        }
                        throw error
                    }
                }
            } catch let error as PostgresError where error.isRetryableTransactionFailure && attempt < maxAttempts {
                logger.debug(
                    "retrying transaction",
                    metadata: [LogKey.attempt: "\(attempt)", LogKey.sqlstate: "\(error.sqlState ?? "")"]
                )
                let ceiling = min(200, 5 << min(attempt, 6))
                try await Task.sleep(for: .milliseconds(Int.random(in: ceiling / 2...ceiling)))
                attempt += 1
            }
        }
    }

    // MARK: Pipelined reads

    /// Runs one read in a transaction of its own, set up by `setup` (statements sent as they are, with their
    /// parameters: `SET LOCAL ROLE …`, a check), in a single round trip: BEGIN, the setup, the query and COMMIT go out
    /// together in libpq's pipeline mode and their results come back together. For the many small reads of tenant
    /// calls, where four round trips (and four hops to a pool thread) cost more than the query. Returns the rows of
    /// each setup statement and of the query. Throws the first statement's error; a transaction left open by a
    /// failure is rolled back when the connection comes back to the pool.
    public func pipelinedRead(
        isolation: IsolationLevel = .readCommitted,
        setup: [PostgresQuery],
        _ query: PostgresQuery
    ) async throws -> (setup: [PostgresRows], rows: PostgresRows) {
        let slot = try await leaseSlot()
        let statements = [PostgresQuery(stringLiteral: "BEGIN ISOLATION LEVEL \(isolation.rawValue)")] + setup
        typealias Outcome = (PostgresConnection?, Result<(setup: [PostgresRows], rows: PostgresRows), any Error>)
        // One hop to a pool thread for the whole read: check the leased connection, send, receive.
        let outcome: Outcome
        do {
            outcome = try await runBlocking { () -> Outcome in
                let connection: PostgresConnection
                do {
                    connection = try self.prepare(slot)
                } catch {
                    return (nil, .failure(error))
                }
                return (
                    connection, Result { try connection.executePipelined(setup: statements, query, finish: ["COMMIT"]) }
                )
            }
        } catch {
            await release(nil)
            throw error
        }
        await release(outcome.0)
        let result = try outcome.1.get()
        return (Array(result.setup.dropFirst()), result.rows)
    }

    // MARK: Scoped reads

    /// Runs one read in a scope set for the session: `enter` (statements such as `SET ROLE …` and
    /// `SET search_path …`, without parameters), then `query`. The connection keeps the scope afterwards, and the next
    /// read in the same scope on it is `query` alone: one statement, as a client that owns its session would send. Any
    /// other use of the connection (queries, transactions) resets what `enter` set first, so nothing runs in a scope it
    /// did not ask for. `scope` names what `enter` sets: two different `enter`s need two different names.
    ///
    /// The search path is empty unless `enter` sets one, so `query` names its tables with their schema (or `enter`
    /// sets a search path). Each statement is prepared once per scope and connection.
    ///
    /// Reads are queued and sent in batches: a few runners, each on one connection, take every read waiting (up to
    /// `maxReadBatch`) and send them in one round trip (`PostgresConnection.executeScopedReads`), so many small reads
    /// cost one hand-over to a pool thread and one round trip between them instead of one each (docs/performance.md).
    /// A read that fails fails alone; the reads queued behind it in its batch run again in the next one.
    public func scopedRead(scope: String, enter: [String], _ query: PostgresQuery) async throws -> PostgresRows {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PostgresRows, any Error>) in
            let read = ScopedRead(scope: scope, enter: enter, query: query)
            let pending = PendingRead(read: read, continuation: continuation)
            switch state.withLockedValue({ $0.machine.enqueueRead(pending) }) {
            case .queued: break
            case .startRunner: Task { await self.runScopedReads() }
            case .refuse:
                continuation.resume(throwing: PostgresError(kind: .shutdown, message: "the pool is shut down"))
            }
        }
    }

    /// A runner: leases a connection and sends the queued reads in batches until none is left.
    private func runScopedReads() async {
        let slot: PostgresConnection?
        do {
            // A connection already in some read's scope first: it needs no reset, and likely no enter.
            slot = try await leaseSlot(prefers: { $0.sessionScope != .none })
        } catch {
            self.endReadRunner(failingOneBatchWith: error)
            return
        }
        let connection: PostgresConnection?
        do {
            connection = try await self.drainScopedReads(on: slot)
        } catch {
            // The pool's threads are stopping: nothing ran.
            self.endReadRunner(failingOneBatchWith: error)
            connection = slot
        }
        await release(connection)
    }

    /// Sends the queued reads in batches on a pool thread until none is left; returns the connection to release.
    private func drainScopedReads(on slot: PostgresConnection?) async throws -> PostgresConnection? {
        try await runBlocking { () -> PostgresConnection? in
            let connection: PostgresConnection
            do {
                connection = try self.prepare(slot, keepingScope: true)
            } catch {
                self.endReadRunner(failingOneBatchWith: error)
                return nil
            }
            while let batch = self.nextReadBatch() {
                let outcomes = connection.executeScopedReads(batch.map(\.read))
                self.readBatches.wrappingIncrement(ordering: .relaxed)
                self.scopeEntries.wrappingIncrement(by: connection.lastBatchEntries, ordering: .relaxed)
                var again: [PendingRead] = []
                for (pending, outcome) in zip(batch, outcomes) {
                    switch outcome {
                    case .rows(let rows): pending.continuation.resume(returning: rows)
                    case .failed(let error): pending.continuation.resume(throwing: error)
                    case .notRun: again.append(pending)
                    }
                }
                if !again.isEmpty { self.state.withLockedValue { $0.machine.requeueReads(again) } }
                if connection.isBroken {
                    self.endReadRunner(failingOneBatchWith: nil)
                    return connection
                }
            }
            return connection
        }
    }

    /// The next batch of queued reads for a runner, or `nil` when the runner ends (`PoolStateMachine.nextReadBatch`).
    private func nextReadBatch() -> [PendingRead]? {
        state.withLockedValue { $0.machine.nextReadBatch() }
    }

    /// Ends a runner that could not get or keep a connection: fails one batch of the queued reads with `error` (all of
    /// them once the pool is shut down), and starts another runner for the rest (`PoolStateMachine.endReadRunner`).
    private func endReadRunner(failingOneBatchWith error: (any Error)?) {
        let (failing, restart) = state.withLockedValue { $0.machine.endReadRunner(failingOneBatch: error != nil) }
        let failure = error ?? PostgresError(kind: .shutdown, message: "the pool is shut down")
        for pending in failing { pending.continuation.resume(throwing: failure) }
        if restart { Task { await self.runScopedReads() } }
    }

    /// How many scoped reads had to send their `enter` statements (the others found the scope set): for tests and
    /// benchmarks.
    public var scopeEntryCount: Int { scopeEntries.load(ordering: .relaxed) }

    /// How many batches (round trips) scoped reads took: for tests and benchmarks.
    public var scopedReadBatchCount: Int { readBatches.load(ordering: .relaxed) }

    // MARK: Lifecycle

    /// Stops leasing, fails the waiters, closes idle connections, waits for leased connections
    /// to come back and closes them, then stops the pool's threads. The pool's `run()` (as a `Service`) ends with it;
    /// calling it again, or while it runs, waits for the one shutdown to finish.
    public func shutdown() async {
        let shutdown = state.withLockedValue { state in
            if let running = state.shutdown { return running }
            let new = Task { await self.shutDownOnce() }
            state.shutdown = new
            return new
        }
        await shutdown.value
    }

    private func shutDownOnce() async {
        let (waiters, idle, drained) = state.withLockedValue { state in
            let (ids, idle, drained) = state.machine.shutDown()
            return (ids.compactMap { state.waiting.removeValue(forKey: $0) }, idle, drained)
        }
        for waiter in waiters {
            waiter.timer.cancel()
            waiter.continuation.resume(throwing: PostgresError(kind: .shutdown, message: "the pool was shut down"))
        }
        for connection in idle { try? await runBlocking { connection.close() } }
        if !drained {
            await withCheckedContinuation { continuation in
                let alreadyDrained = state.withLockedValue { state -> Bool in
                    if state.machine.leasedCount == 0 { return true }
                    state.drained = continuation
                    return false
                }
                if alreadyDrained { continuation.resume() }
            }
        }
        let stop = state.withLockedValue { state -> Bool in
            defer { state.threadsStopped = true }
            return !state.threadsStopped
        }
        if stop { try? await threads.shutdownGracefully() }
        logger.debug("pool shut down")
    }

    // MARK: Leasing

    func lease() async throws -> PostgresConnection {
        let slot = try await leaseSlot()
        do {
            return try await runBlocking { () throws(PostgresError) in try self.prepare(slot) }
        } catch {
            await release(nil)
            throw error
        }
    }

    /// Returns a usable connection for a leased slot: the slot's own if it is still alive, else a
    /// new one. Runs on a pool thread.
    ///
    /// A connection left in a scoped read's scope is reset to the login role and the default search path, unless
    /// `keepingScope` (a scoped read, which sets its own scope if it differs).
    private func prepare(_ slot: PostgresConnection?, keepingScope: Bool = false) throws(PostgresError)
        -> PostgresConnection
    {
        if let slot {
            if slot.checkIdleConnection() {
                if keepingScope || slot.sessionScope == .none { return slot }
                do {
                    try slot.simpleQuery("RESET ROLE; RESET search_path")
                    slot.sessionScope = .none
                    return slot
                } catch {
                    logger.info(
                        "replacing a connection whose scope could not be reset",
                        metadata: [LogKey.error: "\(error.message)"]
                    )
                }
            } else {
                logger.info("replacing a broken connection", metadata: [LogKey.pid: "\(slot.backendPID)"])
            }
            slot.close()
        }
        let now = ContinuousClock.now
        if case .fail(let error) = state.withLockedValue({ $0.machine.connectAction(at: now) }) { throw error }
        do {
            let connection = try PostgresConnection.connect(configuration)
            state.withLockedValue { $0.machine.connectSucceeded() }
            logger.debug("connected", metadata: [LogKey.pid: "\(connection.backendPID)"])
            return connection
        } catch {
            _ = state.withLockedValue { $0.machine.connectFailed(error, at: .now) }
            logger.warning("could not connect", metadata: [LogKey.error: "\(error.message)"])
            throw error
        }
    }

    /// Leases a slot, preferring an open connection for which `prefers` holds (see `PoolStateMachine.lease`). By
    /// default one outside any scoped read's scope, which needs no reset.
    private func leaseSlot(
        prefers: @escaping (PostgresConnection) -> Bool = { $0.sessionScope == .none }
    ) async throws -> PostgresConnection? {
        let id = state.withLockedValue { state in
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        let timeout = configuration.poolAcquireTimeout
        let poolSize = configuration.poolSize
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation {
                (continuation: CheckedContinuation<PostgresConnection?, any Error>) in
                enum Outcome {
                    case leased(PostgresConnection?)
                    case waiting, shutDown, cancelled
                }
                let outcome = state.withLockedValue { state -> Outcome in
                    // The cancellation flag is set before the handler runs, so checking it under
                    // the lock leaves no window where a cancellation is missed.
                    if Task.isCancelled { return .cancelled }
                    switch state.machine.lease(id, prefers: prefers) {
                    case .use(let slot): return .leased(slot)
                    case .fail: return .shutDown
                    case .wait:
                        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(
                            in: .nanoseconds(
                                Int64(timeout.components.seconds) * 1_000_000_000
                                    + Int64(timeout.components.attoseconds / 1_000_000_000)
                            )
                        ) { [weak self] () -> Void in
                            self?.abandon(
                                id,
                                with: PostgresError(
                                    kind: .poolTimeout,
                                    message:
                                        "no database connection became free within \(timeout) (pool size \(poolSize))"
                                )
                            )
                        }
                        state.waiting[id] = Waiter(continuation: continuation, timer: timer)
                        return .waiting
                    }
                }
                switch outcome {
                case .leased(let slot): continuation.resume(returning: slot)
                case .shutDown:
                    continuation.resume(throwing: PostgresError(kind: .shutdown, message: "the pool is shut down"))
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .waiting: break
                }
            }
        } onCancel: {
            abandon(id, with: CancellationError())
        }
    }

    /// A waiter gives up (timeout or cancellation), unless it was served in the meantime.
    private func abandon(_ id: Int, with error: any Error) {
        let waiter = state.withLockedValue { state -> Waiter? in
            guard state.machine.abandon(id) else { return nil }
            return state.waiting.removeValue(forKey: id)
        }
        waiter?.timer.cancel()
        waiter?.continuation.resume(throwing: error)
    }

    /// Returns a connection to the pool, first rolling back a transaction left open and closing
    /// it if it broke.
    func release(_ connection: PostgresConnection?) async {
        var slot = connection
        // A connection that is idle and not broken goes back as it is. Both are read from libpq's memory, not the
        // socket, so there is no need for a hop to a pool thread (the connection is still ours until it is released).
        if let connection, connection.isBroken || connection.transactionStatus != .idle {
            let usable =
                (try? await runBlocking { () -> Bool in
                    if !connection.isBroken, connection.transactionStatus != .idle {
                        _ = try? connection.simpleQuery("ROLLBACK")
                    }
                    if connection.isBroken || connection.transactionStatus != .idle {
                        connection.close()
                        return false
                    }
                    return true
                }) ?? false
            if !usable { slot = nil }
        }
        enum Next {
            case none
            case handOver(Waiter?, PostgresConnection?)
            case close(PostgresConnection?, drained: CheckedContinuation<Void, Never>?)
        }
        let next = state.withLockedValue { state -> Next in
            switch state.machine.release(slot) {
            case .keep:
                return .none
            case .handOver(let slot, let id):
                return .handOver(state.waiting.removeValue(forKey: id), slot)
            case .close(let connection, let drained):
                defer { if drained { state.drained = nil } }
                return .close(connection, drained: drained ? state.drained : nil)
            }
        }
        switch next {
        case .none:
            break
        case .handOver(let waiter, let slot):
            waiter?.timer.cancel()
            waiter?.continuation.resume(returning: slot)
        case .close(let connection, let drained):
            if let connection { try? await runBlocking { connection.close() } }
            drained?.resume()
        }
    }

    /// Runs blocking libpq work on one of the pool's threads and waits for it without blocking
    /// the caller's thread. The work always runs to the end, even if the task is cancelled, so a
    /// connection is never left in the middle of a protocol exchange.
    func runBlocking<Value: Sendable>(
        _ body: @escaping @Sendable () throws -> Value
    ) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            threads.submit { state in
                switch state {
                case .active: continuation.resume(with: Result(catching: body))
                case .cancelled:
                    continuation.resume(throwing: PostgresError(kind: .shutdown, message: "the pool was shut down"))
                }
            }
        }
    }
}

/// Channel names are identifiers; they come from code, but are checked anyway.
func validateChannelName(_ channel: String) throws(PostgresError) {
    guard !channel.isEmpty, channel.utf8.count < 64, !channel.containsNUL else {
        throw PostgresError(kind: .invalidArgument, message: "a channel name must be 1 to 63 bytes without NUL")
    }
}
