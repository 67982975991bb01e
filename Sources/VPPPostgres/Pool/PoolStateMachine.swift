/// The pool's bookkeeping without I/O or locks: which slots are free, who waits (FIFO), and what
/// to do on lease, release, timeout and shutdown. `PostgresPool` performs the actions under its
/// lock; the unit tests drive this struct directly with plain values.
///
/// A slot is either an open connection or `nil` (not connected yet, or closed after a failure):
/// the lessee of a `nil` slot opens a connection, so the pool connects lazily and replaces broken
/// connections on the next lease.
struct PoolStateMachine<Connection, WaiterID: Hashable> {
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

    private var free: [Connection?]
    private var waiters: [WaiterID] = []
    private(set) var leasedCount = 0
    private(set) var isShutDown = false

    init(size: Int) {
        precondition(size > 0, "a pool needs at least one connection")
        free = Array(repeating: nil, count: size)
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
}

extension PoolStateMachine: Sendable where Connection: Sendable, WaiterID: Sendable {}
