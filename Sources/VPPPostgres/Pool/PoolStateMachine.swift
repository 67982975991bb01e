import NIOCore

/// The pool's bookkeeping without I/O or locks: which slots are free, who waits (FIFO), and what
/// to do on lease, release, timeout and shutdown; when a failed connection attempt may be tried again;
/// and which queued scoped reads go in the next batch, and when a runner starts or ends. `PostgresPool`
/// performs the actions under its lock; the unit tests drive this struct directly with plain values.
///
/// A slot is either an open connection or `nil` (not connected yet, or closed after a failure):
/// the lessee of a `nil` slot opens a connection, so the pool connects lazily and replaces broken
/// connections on the next lease.
struct PoolStateMachine<Connection, WaiterID: Hashable, Read> {
    enum LeaseAction {
        /// Use this slot (`nil`: open a new connection).
        case use(Connection?)
        /// Every slot is leased: the caller waits in line.
        case wait
        /// The pool is shut down.
        case fail
    }

    enum ReleaseAction {
        /// Give the slot to the first waiter.
        case handOver(Connection?, to: WaiterID)
        /// The slot went back to the free list.
        case keep
        /// The pool is shutting down: close the connection (if any); `drained` when it was the last.
        case close(Connection?, drained: Bool)
    }

    enum ConnectAction: Equatable {
        /// Open a connection.
        case connect
        /// An attempt failed a moment ago: fail at once with its error.
        case fail(PostgresError)
    }

    enum ReadArrival {
        /// The read waits for the runners at work.
        case queued
        /// The read is queued, and no runner is at work: start one.
        case startRunner
        /// The pool is shut down: fail the read (it was not queued).
        case refuse
    }

    private var free: [Connection?]
    private var waiters: [WaiterID] = []
    private(set) var leasedCount = 0
    private(set) var isShutDown = false

    /// After a failed connection attempt, further attempts fail at once until `notBefore`.
    private var reconnectDelay: Duration = .zero
    private var reconnectNotBefore: ContinuousClock.Instant?
    private var lastConnectError: PostgresError?

    /// Scoped reads waiting for a runner, oldest first.
    private var pendingReads = CircularBuffer<Read>()
    private(set) var readRunners = 0
    /// How many runners send scoped reads at most at once (each holds a connection while reads are queued).
    let readRunnerLimit: Int
    /// At most this many reads go in one batch (one round trip).
    let maxReadBatch: Int

    /// - Parameters:
    ///   - size: the number of slots (connections).
    ///   - readRunnerLimit: how many scoped-read runners at most (default: one per slot).
    ///   - maxReadBatch: the most reads in one batch.
    init(size: Int, readRunnerLimit: Int? = nil, maxReadBatch: Int = 32) {
        precondition(size > 0, "a pool needs at least one connection")
        precondition(maxReadBatch > 0, "a batch holds at least one read")
        free = Array(repeating: nil, count: size)
        self.readRunnerLimit = max(1, readRunnerLimit ?? size)
        self.maxReadBatch = maxReadBatch
    }

    var waiterCount: Int { waiters.count }

    /// Leases a free slot: the most recently released open connection for which `prefers` holds, else the most
    /// recently released one, else an empty slot.
    mutating func lease(_ waiter: WaiterID, prefers: (Connection) -> Bool = { _ in true }) -> LeaseAction {
        if isShutDown { return .fail }
        // Open connections are kept at the end, so they are reused before empty slots get connected.
        if let index = free.lastIndex(where: { $0.map(prefers) ?? false }) {
            leasedCount += 1
            return .use(free.remove(at: index))
        }
        if let slot = free.popLast() {
            leasedCount += 1
            return .use(slot)
        }
        waiters.append(waiter)
        return .wait
    }

    mutating func release(_ connection: Connection?) -> ReleaseAction {
        if isShutDown {
            leasedCount -= 1
            return .close(connection, drained: leasedCount == 0)
        }
        if !waiters.isEmpty {
            return .handOver(connection, to: waiters.removeFirst())
        }
        leasedCount -= 1
        if connection == nil { free.insert(nil, at: 0) } else { free.append(connection) }
        return .keep
    }

    /// A waiter gave up (timeout or cancellation). Returns `false` if it was no longer waiting,
    /// i.e. it has been handed a slot or failed already, and must not be resumed again.
    mutating func abandon(_ waiter: WaiterID) -> Bool {
        guard let index = waiters.firstIndex(of: waiter) else { return false }
        waiters.remove(at: index)
        return true
    }

    /// Stops leasing. Returns the waiters to fail, the open idle connections to close, and
    /// whether nothing is leased (else the last release reports `drained`).
    mutating func shutDown() -> (waiters: [WaiterID], idle: [Connection], drained: Bool) {
        guard !isShutDown else { return ([], [], false) }
        isShutDown = true
        let result = (waiters, free.compactMap { $0 }, leasedCount == 0)
        waiters = []
        free = []
        return result
    }

    // MARK: Reconnect backoff

    /// Whether the lessee of an empty slot may open a connection at `now`.
    func connectAction(at now: ContinuousClock.Instant) -> ConnectAction {
        guard let notBefore = reconnectNotBefore, now < notBefore, let lastConnectError else { return .connect }
        return .fail(lastConnectError)
    }

    /// A connection attempt succeeded: the next failure waits the shortest delay again.
    mutating func connectSucceeded() {
        reconnectDelay = .zero
        reconnectNotBefore = nil
        lastConnectError = nil
    }

    /// A connection attempt failed at `now`: attempts fail at once with `error` for the returned delay, which doubles
    /// from 50 ms with each failure in a row, up to a second.
    @discardableResult
    mutating func connectFailed(_ error: PostgresError, at now: ContinuousClock.Instant) -> Duration {
        reconnectDelay = min(max(reconnectDelay * 2, .milliseconds(50)), .seconds(1))
        reconnectNotBefore = now + reconnectDelay
        lastConnectError = error
        return reconnectDelay
    }

    // MARK: Read batching

    var pendingReadCount: Int { pendingReads.count }

    /// A scoped read arrives: queued (and a runner started if fewer than `readRunnerLimit` are at work), or refused
    /// once the pool is shut down.
    mutating func enqueueRead(_ read: Read) -> ReadArrival {
        if isShutDown { return .refuse }
        pendingReads.append(read)
        guard readRunners < readRunnerLimit else { return .queued }
        readRunners += 1
        return .startRunner
    }

    /// The next batch for a runner: the oldest queued reads, at most `maxReadBatch`. When none is queued, the runner
    /// ends (`nil`); in the same critical section as `enqueueRead` counts the runners, so no read is left without one.
    mutating func nextReadBatch() -> [Read]? {
        guard !pendingReads.isEmpty else {
            readRunners -= 1
            return nil
        }
        var batch: [Read] = []
        batch.reserveCapacity(min(pendingReads.count, maxReadBatch))
        while batch.count < maxReadBatch, let read = pendingReads.popFirst() { batch.append(read) }
        return batch
    }

    /// Reads of a batch that did not run (an earlier read failed) go back to the front of the queue, in their order.
    mutating func requeueReads(_ reads: [Read]) {
        for read in reads.reversed() { pendingReads.prepend(read) }
    }

    /// A runner could not get or keep a connection and ends. Returns the reads to fail: one batch if `failingOneBatch`
    /// (so a database that is down fails reads at once rather than at their deadline), and every queued read once the
    /// pool is shut down; and whether to start another runner in its place for the reads still queued.
    mutating func endReadRunner(failingOneBatch: Bool) -> (failing: [Read], restart: Bool) {
        var failing: [Read] = []
        if failingOneBatch {
            while failing.count < maxReadBatch, let read = pendingReads.popFirst() { failing.append(read) }
        }
        if isShutDown {
            failing.append(contentsOf: pendingReads)
            pendingReads.removeAll()
        }
        guard pendingReads.isEmpty else { return (failing, true) }
        readRunners -= 1
        return (failing, false)
    }
}

extension PoolStateMachine: Sendable where Connection: Sendable, WaiterID: Sendable, Read: Sendable {}
