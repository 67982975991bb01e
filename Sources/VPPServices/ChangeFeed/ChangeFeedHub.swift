public import Foundation
public import Logging
import Metrics
import NIOConcurrencyHelpers
import VPPLogKeys
public import VPPStorage

/// Fans a tenant's new changes out to the WatchChanges streams this process serves (issue 19): one reader per tenant
/// with watchers ("tail") reads each change once from the database and hands the batch to every watcher of the
/// tenant, whatever their number. Woken by `ChangeListener` when a transaction that wrote changes commits (at any
/// server), and every `pollInterval` in case a notification was lost.
///
/// What a watcher may make this process hold is bounded: each watcher has at most `maxBufferedPerWatcher` changes
/// waiting for it (a watcher that falls further behind is cut, and its stream says so), and at most `maxWatchers`
/// watch at once. Batches are shared between the watchers of a tenant, not copied.
public final class ChangeFeedHub: Sendable {
    public struct Configuration: Sendable {
        /// Changes buffered for one watcher before it is cut (RESOURCE_EXHAUSTED).
        public var maxBufferedPerWatcher: Int
        /// WatchChanges streams at once in this process.
        public var maxWatchers: Int
        /// How often a tail reads without being woken (a lost notification delays changes at most this long).
        public var pollInterval: Duration
        /// How often an idle watcher is given a chance to send a heartbeat.
        public var tick: Duration

        public init(
            maxBufferedPerWatcher: Int = 1_000,
            maxWatchers: Int = 10_000,
            pollInterval: Duration = .seconds(5),
            tick: Duration = .seconds(1)
        ) {
            self.maxBufferedPerWatcher = maxBufferedPerWatcher
            self.maxWatchers = maxWatchers
            self.pollInterval = pollInterval
            self.tick = tick
        }
    }

    /// One watcher's share of its tenant's feed: every change with a sequence number above `start`, in order, in
    /// batches (an empty batch is a tick: nothing new). Ends when the watcher is cut (`overflowed`) or cancelled.
    public final class Subscription: Sendable {
        public let start: Int64
        public let batches: AsyncStream<[ChangeRecord]>
        let id: UInt64
        let tenantID: UUID
        let continuation: AsyncStream<[ChangeRecord]>.Continuation
        private let state = NIOLockedValueBox((buffered: 0, overflowed: false, tickPending: false))
        private let limit: Int

        init(id: UInt64, tenantID: UUID, start: Int64, limit: Int) {
            self.id = id
            self.tenantID = tenantID
            self.start = start
            self.limit = limit
            (self.batches, self.continuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
        }

        /// True when the watcher fell `limit` changes behind and was cut.
        public var overflowed: Bool { self.state.withLockedValue { $0.overflowed } }

        /// Changes buffered for this watcher now.
        public var buffered: Int { self.state.withLockedValue { $0.buffered } }

        /// The watcher has dealt with `batch` (its changes no longer count against its bound).
        public func consumed(_ batch: [ChangeRecord]) {
            self.state.withLockedValue { state in
                state.buffered -= batch.count
                if batch.isEmpty { state.tickPending = false }
            }
        }

        /// Hands a batch over; false (and the stream finished) when it would exceed the watcher's bound. An empty
        /// batch (a tick) is not queued behind another tick the watcher has not taken yet.
        func offer(_ batch: [ChangeRecord]) -> Bool {
            var skip = false
            let accepted = self.state.withLockedValue { state -> Bool in
                guard !state.overflowed else { return false }
                if batch.isEmpty {
                    skip = state.tickPending
                    state.tickPending = true
                    return true
                }
                if state.buffered + batch.count > self.limit {
                    state.overflowed = true
                    return false
                }
                state.buffered += batch.count
                return true
            }
            if accepted {
                if !skip { self.continuation.yield(batch) }
            } else {
                self.continuation.finish()
            }
            return accepted
        }
    }

    /// The reader of one tenant's feed; lives while the tenant has watchers here.
    private final class Tail: Sendable {
        let tenantID: UUID
        /// The last sequence number handed to the watchers.
        let position: NIOLockedValueBox<Int64>
        let wake: AsyncStream<Void>.Continuation
        let wakes: AsyncStream<Void>
        /// A notification arrived since the last read (a wake without one is the ticker's).
        let signalled = NIOLockedValueBox(true)

        init(tenantID: UUID, position: Int64) {
            self.tenantID = tenantID
            self.position = NIOLockedValueBox(position)
            (self.wakes, self.wake) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
        }
    }

    private struct State {
        var tails: [UUID: Tail] = [:]
        var subscribers: [UUID: [UInt64: Subscription]] = [:]
        var watchers = 0
        var nextID: UInt64 = 0
    }

    public let configuration: Configuration
    private let changeLog: ChangeLog
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let watchersGauge = Gauge(label: "vpp_change_watchers")
    private let cutCounter = Counter(label: "vpp_change_watchers_cut_total")
    private let deliveredCounter = Counter(label: "vpp_changes_delivered_total")

    public init(changeLog: ChangeLog, configuration: Configuration = Configuration(), logger: Logger) {
        self.changeLog = changeLog
        self.configuration = configuration
        self.logger = logger
    }

    /// Registers a watcher of `tenantID` that has read the log up to `known`. Its subscription carries every change
    /// above `subscription.start`: the watcher reads what lies between `known` and `start` from the log itself when
    /// `start` is higher, and skips what it has seen when it is lower, so it sees no gap and no change twice.
    public func subscribe(tenantID: UUID, known: Int64) throws -> Subscription {
        let (subscription, newTail) = try self.state.withLockedValue { state -> (Subscription, Tail?) in
            guard state.watchers < self.configuration.maxWatchers else {
                throw StorageError.resourceExhausted(
                    "This server already serves \(self.configuration.maxWatchers) change streams (VPP_CHANGE_MAX_WATCHERS); retry later or on another server."
                )
            }
            state.nextID += 1
            var newTail: Tail?
            let tail: Tail
            if let existing = state.tails[tenantID] {
                tail = existing
            } else {
                tail = Tail(tenantID: tenantID, position: known)
                state.tails[tenantID] = tail
                newTail = tail
            }
            let subscription = Subscription(
                id: state.nextID,
                tenantID: tenantID,
                start: tail.position.withLockedValue { $0 },
                limit: self.configuration.maxBufferedPerWatcher
            )
            state.subscribers[tenantID, default: [:]][subscription.id] = subscription
            state.watchers += 1
            return (subscription, newTail)
        }
        subscription.continuation.onTermination = { [weak self] _ in
            self?.remove(subscription)
        }
        self.watchersGauge.record(self.watcherCount)
        if let newTail {
            Task { await self.run(newTail) }
        }
        return subscription
    }

    private func remove(_ subscription: Subscription) {
        let removed = self.state.withLockedValue { state -> Bool in
            guard state.subscribers[subscription.tenantID]?.removeValue(forKey: subscription.id) != nil else {
                return false
            }
            state.watchers -= 1
            return true
        }
        if removed { self.watchersGauge.record(self.watcherCount) }
    }

    /// A transaction that wrote changes in `tenantID` committed (at this server or another).
    public func signal(tenantID: UUID) {
        guard let tail = self.state.withLockedValue({ $0.tails[tenantID] }) else { return }
        tail.signalled.withLockedValue { $0 = true }
        tail.wake.yield()
    }

    /// Wakes every tail (the listener reconnected: notifications may have been lost).
    public func signalAll() {
        let tails = self.state.withLockedValue { Array($0.tails.values) }
        for tail in tails {
            tail.signalled.withLockedValue { $0 = true }
            tail.wake.yield()
        }
    }

    /// Watchers now registered.
    public var watcherCount: Int { self.state.withLockedValue { $0.watchers } }

    /// Changes buffered for every watcher, summed (for tests and the slow-consumer check).
    public var bufferedChanges: Int {
        self.state.withLockedValue { state in
            state.subscribers.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.buffered } }
        }
    }

    private func run(_ tail: Tail) async {
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.configuration.tick)
                tail.wake.yield()
            }
        }
        defer { ticker.cancel() }
        var lastRead = ContinuousClock.now
        var iterator = tail.wakes.makeAsyncIterator()
        while true {
            let subscribers = self.state.withLockedValue { state -> [Subscription]? in
                let current = state.subscribers[tail.tenantID] ?? [:]
                if current.isEmpty {
                    // The last watcher left: this tail ends (under the lock a new watcher would find it with).
                    state.tails[tail.tenantID] = nil
                    state.subscribers[tail.tenantID] = nil
                    return nil
                }
                return Array(current.values)
            }
            guard let subscribers else { return }
            var delivered = false
            let woken = tail.signalled.withLockedValue { signalled -> Bool in
                defer { signalled = false }
                return signalled
            }
            if woken || ContinuousClock.now - lastRead >= self.configuration.pollInterval {
                lastRead = ContinuousClock.now
                delivered = await self.readAndDeliver(tail, subscribers)
            }
            if !delivered {
                for subscription in subscribers { _ = subscription.offer([]) }
            }
            // A wake is either a notification or the ticker; the ticker alone only ticks the watchers.
            guard await iterator.next() != nil else { return }
        }
    }

    /// Reads everything after the tail's position and hands it to the watchers. Returns whether anything was handed.
    private func readAndDeliver(_ tail: Tail, _ subscribers: [Subscription]) async -> Bool {
        var delivered = false
        do {
            while true {
                let position = tail.position.withLockedValue { $0 }
                let page = try await self.changeLog.read(
                    tenantID: tail.tenantID,
                    after: position,
                    kinds: Set(ChangeKind.allCases),
                    limit: 500
                )
                if !page.changes.isEmpty {
                    for subscription in subscribers where !subscription.offer(page.changes) {
                        self.cutCounter.increment()
                        self.logger.notice(
                            "A change stream fell behind and was cut",
                            metadata: [
                                LogKey.tenantID: "\(tail.tenantID)",
                                LogKey.buffered: "\(subscription.buffered)",
                            ]
                        )
                    }
                    self.deliveredCounter.increment(by: page.changes.count * subscribers.count)
                    delivered = true
                }
                tail.position.withLockedValue { $0 = page.next }
                if page.next >= page.head { break }
            }
        } catch let expired as ChangeCursorExpired {
            // The tail fell behind the retention (it cannot, short of a pruning window shorter than a read): its
            // watchers cannot be served without a gap, so they are cut and told when they resume.
            self.logger.error("A change tail fell behind the retention", metadata: [LogKey.error: "\(expired)"])
            for subscription in subscribers { subscription.continuation.finish() }
        } catch let error as StorageError {
            // The tenant was suspended or deleted: its watchers end, and each tells its client why.
            self.logger.info(
                "A tenant's change streams end",
                metadata: [LogKey.tenantID: "\(tail.tenantID)", LogKey.error: "\(error)"]
            )
            for subscription in subscribers { subscription.continuation.finish() }
        } catch {
            // The database is unreachable: the watchers wait; the next wake tries again.
            self.logger.warning(
                "Could not read the change log",
                metadata: [LogKey.tenantID: "\(tail.tenantID)", LogKey.error: "\(error)"]
            )
        }
        return delivered
    }
}
