import NIOConcurrencyHelpers
import NIOCore

/// What a connection is checked for on every sweep: its authentication deadline and its idle time.
protocol SweptConnection: AnyObject {
    func sweep(now: NIODeadline)
}

/// The authentication and idle deadlines of every connection on one event loop, checked by one timer (issue 16,
/// point 7).
///
/// A timer per connection made closing many connections at once quadratic: NIO finds a cancelled task in its timer
/// heap by a linear search, so 10,000 connections closing cancelled 20,000 tasks in a heap of 20,000 and held the
/// event loops for seconds. Here a connection joins and leaves a dictionary, and one task per loop walks it every
/// `interval` (at most a quarter of the shorter timeout, so a deadline is met within a quarter of its length).
final class ConnectionSweeper {
    private let loop: any EventLoop
    private let interval: TimeAmount
    private var connections: [ObjectIdentifier: any SweptConnection] = [:]
    private var scheduled: Scheduled<Void>?

    init(loop: any EventLoop, interval: TimeAmount) {
        self.loop = loop
        self.interval = interval
    }

    var count: Int { self.connections.count }

    /// Whether the sweep timer is set (it is exactly while connections are there).
    var isScheduled: Bool { self.scheduled != nil }

    func add(_ connection: any SweptConnection) {
        self.connections[ObjectIdentifier(connection)] = connection
        if self.scheduled == nil { self.schedule() }
    }

    func remove(_ connection: any SweptConnection) {
        self.connections.removeValue(forKey: ObjectIdentifier(connection))
        // No timer is left behind on a loop with no connections (a server that stopped, a test's loop).
        if self.connections.isEmpty {
            self.scheduled?.cancel()
            self.scheduled = nil
        }
    }

    private func schedule() {
        self.scheduled = self.loop.assumeIsolated().scheduleTask(in: self.interval) {
            self.scheduled = nil
            let now = self.loop.now
            // A snapshot: a sweep may close connections, and closing removes them.
            for connection in Array(self.connections.values) {
                connection.sweep(now: now)
            }
            if !self.connections.isEmpty, self.scheduled == nil { self.schedule() }
        }
    }
}

/// One sweeper per event loop for one server's connections.
final class ConnectionSweepers: Sendable {
    private let sweepers = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<ConnectionSweeper>]>([:])
    let interval: TimeAmount

    /// Sweeps every quarter of the shorter of the two timeouts, between 10 ms and 1 s.
    init(authenticationTimeout: Duration, idleTimeout: Duration) {
        let shorter = min(authenticationTimeout.nanosecondsClamped, idleTimeout.nanosecondsClamped)
        self.interval = .nanoseconds(min(max(shorter / 4, 10_000_000), 1_000_000_000))
    }

    /// How many connections the sweepers hold now, over every loop (tests, diagnostics).
    func connectionCount() async throws -> Int {
        let sweepers = self.sweepers.withLockedValue { Array($0.values) }
        var total = 0
        for sweeper in sweepers {
            total += try await sweeper.eventLoop.submit { sweeper.value.count }.get()
        }
        return total
    }

    /// The sweeper of `loop`; call it on that loop.
    func sweeper(on loop: any EventLoop) -> ConnectionSweeper {
        let interval = self.interval
        return self.sweepers.withLockedValue { sweepers in
            if let existing = sweepers[ObjectIdentifier(loop)] { return existing }
            let created = NIOLoopBound(ConnectionSweeper(loop: loop, interval: interval), eventLoop: loop)
            sweepers[ObjectIdentifier(loop)] = created
            return created
        }.value
    }
}
