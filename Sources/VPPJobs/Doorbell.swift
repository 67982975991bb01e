import NIOConcurrencyHelpers
import VPPClock

/// Wakes one waiting task: `ring()` ends the current `wait`, or the next one if nobody waits (rings do not pile up).
/// `wait` also ends after its timeout and when its task is cancelled. The worker's loops sleep on these instead of
/// polling.
final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
        var waiterID = 0
        /// A timeout or cancellation that arrived before its waiter was registered.
        var endedEarly: Int?
    }

    private let state = NIOLockedValueBox(State())
    /// What `wait`'s timeout sleeps on.
    private let clock: InstantClock

    init(clock: InstantClock = .continuous) {
        self.clock = clock
    }

    func ring() {
        self.wake(nil)
    }

    /// Returns when rung (a ring since the last wait counts), after `timeout`, or when the task is cancelled.
    func wait(timeout: Duration) async {
        let id = self.state.withLockedValue { state in
            state.waiterID += 1
            return state.waiterID
        }
        let clock = self.clock
        let timer = Task { [weak self] in
            guard (try? await clock.sleep(for: timeout)) != nil else { return }
            self?.wake(id)
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLockedValue { state -> Bool in
                    if state.rung || state.endedEarly == id {
                        state.rung = false
                        state.endedEarly = nil
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.wake(id)
        }
    }

    /// Ends wait `id` (its timeout or cancellation), or with nil whichever wait is waiting (a ring): when nobody
    /// waits yet, the next wait (of that id, or any for a ring) returns at once.
    private func wake(_ id: Int?) {
        let waiter = self.state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            if let id, state.waiterID != id { return nil }
            guard let waiter = state.waiter else {
                if let id { state.endedEarly = id } else { state.rung = true }
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }
}
