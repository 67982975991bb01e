import NIOConcurrencyHelpers

/// A clock that moves only when told (`advance(by:)`), for tests: a sleep ends when the clock is advanced past its
/// deadline, or throws `CancellationError` when its task is cancelled. It starts at the real clock's now, so its
/// instants are ordinary `ContinuousClock.Instant`s and mix with code that reads the real clock only by mistake (a
/// test then sees time stand still where it should not).
public final class ManualClock: Clock, Sendable {
    public typealias Instant = ContinuousClock.Instant
    public typealias Duration = Swift.Duration

    private struct Sleeper {
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Instant
        var sleepers: [Int: Sleeper] = [:]
        var nextID = 0
    }

    private let state: NIOLockedValueBox<State>

    public init(startingAt start: Instant = ContinuousClock.now) {
        self.state = NIOLockedValueBox(State(now: start))
    }

    public var now: Instant { self.state.withLockedValue { $0.now } }
    public var minimumResolution: Duration { .zero }

    /// How many sleeps are waiting for the clock to move: a test waits for the code under test to reach its sleep
    /// (`waitForSleepers`) before it advances the clock, so the advance is not lost.
    public var sleeperCount: Int { self.state.withLockedValue { $0.sleepers.count } }

    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        let id: Int? = self.state.withLockedValue { state in
            guard deadline > state.now else { return nil }
            state.nextID += 1
            return state.nextID
        }
        guard let id else {
            try Task.checkCancellation()
            return
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resume: Result<Void, any Error>? = self.state.withLockedValue { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return nil
                }
                if let resume { continuation.resume(with: resume) }
            }
        } onCancel: {
            let sleeper = self.state.withLockedValue { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves the clock on and wakes every sleep whose deadline it reached, earliest first.
    public func advance(by duration: Duration) {
        precondition(duration >= .zero, "a clock does not go back")
        let woken: [Sleeper] = self.state.withLockedValue { state in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleepers.filter { $0.value.deadline <= now }
            for id in due.keys { state.sleepers.removeValue(forKey: id) }
            return due.values.sorted { $0.deadline < $1.deadline }
        }
        for sleeper in woken { sleeper.continuation.resume() }
    }

    /// Returns once at least `count` sleeps are waiting on this clock (polling the real clock briefly), or throws
    /// after `timeout` of real time: the code under test never got to its sleep.
    public func waitForSleepers(_ count: Int = 1, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while self.sleeperCount < count {
            guard ContinuousClock.now < deadline else {
                throw ManualClockTimeout(expected: count, found: self.sleeperCount)
            }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}

/// `waitForSleepers` gave up: fewer sleeps than expected were waiting.
public struct ManualClockTimeout: Error, CustomStringConvertible {
    public var expected: Int
    public var found: Int
    public var description: String { "expected \(self.expected) sleeps on the manual clock, found \(self.found)" }
}
