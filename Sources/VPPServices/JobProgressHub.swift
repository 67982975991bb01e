import Foundation
import NIOConcurrencyHelpers
public import VPPPush

/// Wakes the server streams that watch a job (WatchSyncJob) when the job changes. Fed by `ChangeListener` from the
/// queue's NOTIFY channel, so a change made by a worker in any server reaches the watchers of every server. Watchers
/// also re-read on a timer, so a lost notification only delays an update.
public final class JobProgressHub: Sendable, EventSignals {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var waiters: [String: [Waiter]] = [:]
        var nextID: UInt64 = 0
        /// Counts signals; `recent` holds the last one of each key signalled lately (bounded: when it is cleared,
        /// `forgottenBefore` makes every waiter from before return at once, which is only an early look).
        var generation: UInt64 = 0
        var recent: [String: UInt64] = [:]
        var forgottenBefore: UInt64 = 0
    }

    static let maxRecent = 4096

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Wakes every waiter of `key` (a job id, lower-case).
    public func signal(_ key: String) {
        let woken = self.state.withLockedValue { state in
            state.generation += 1
            if state.recent.count >= Self.maxRecent {
                state.recent.removeAll(keepingCapacity: true)
                state.forgottenBefore = state.generation
            }
            state.recent[key] = state.generation
            return state.waiters.removeValue(forKey: key) ?? []
        }
        for waiter in woken { waiter.continuation.resume() }
    }

    /// Wakes every waiter (the listener reconnected: notifications may have been lost).
    public func signalAll() {
        let woken = self.state.withLockedValue { state -> [Waiter] in
            state.generation += 1
            state.recent.removeAll(keepingCapacity: true)
            state.forgottenBefore = state.generation
            defer { state.waiters.removeAll() }
            return state.waiters.values.flatMap { $0 }
        }
        for waiter in woken { waiter.continuation.resume() }
    }

    /// Returns when `key` is signalled, after `timeout`, or when the task is cancelled, whichever comes first.
    public func wait(for key: String, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForSignal(key) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    /// The number of signals so far (see `wait(for:since:timeout:)`).
    public var generation: UInt64 { self.state.withLockedValue { $0.generation } }

    /// As `wait(for:timeout:)`, but returns at once when `key` was signalled after `generation` (read before the
    /// caller looked at what the signal announces), so a signal between that look and this wait is not lost.
    public func wait(for key: String, since generation: UInt64, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForSignal(key, since: generation) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForSignal(_ key: String, since generation: UInt64? = nil) async {
        let id = self.state.withLockedValue { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLockedValue { state -> Bool in
                    if Task.isCancelled { return true }
                    // Checked under the lock that registers the waiter: a signal is either seen here or wakes it.
                    if let generation, state.forgottenBefore > generation || (state.recent[key] ?? 0) > generation {
                        return true
                    }
                    state.waiters[key, default: []].append(Waiter(id: id, continuation: continuation))
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = self.state.withLockedValue { state -> Waiter? in
                guard var list = state.waiters[key], let index = list.firstIndex(where: { $0.id == id }) else {
                    return nil
                }
                let waiter = list.remove(at: index)
                state.waiters[key] = list.isEmpty ? nil : list
                return waiter
            }
            waiter?.continuation.resume()
        }
    }

    /// Waiters now registered (for tests).
    public var waiterCount: Int { self.state.withLockedValue { $0.waiters.values.reduce(0) { $0 + $1.count } } }
}
