import Foundation
import Logging
import NIOConcurrencyHelpers

/// Writes the worker's succeeded jobs in batches: while one batch is being written, the jobs that finish gather, and
/// go in the next statement together (group commit). A job alone is written at once, so nothing waits for a batch to
/// fill; under load one round trip finishes many jobs.
final class SuccessBatcher: Sendable {
    private struct Entry {
        var id: UUID
        var result: String
        var continuation: CheckedContinuation<Bool, any Error>
    }

    private struct State {
        var pending: [Entry] = []
        var flushing = false
    }

    private let state = NIOLockedValueBox(State())
    let queue: JobQueue
    let owner: String
    let logger: Logger

    init(queue: JobQueue, owner: String, logger: Logger) {
        self.queue = queue
        self.owner = owner
        self.logger = logger
    }

    /// Marks the job succeeded; false when the lease was lost. The write runs in a task of its own, so it is not
    /// cancelled with the caller: a finished job's outcome is always written.
    func succeed(_ id: UUID, result: String) async throws -> Bool {
        try await withCheckedThrowingContinuation { continuation in
            let startFlushing = self.state.withLockedValue { state -> Bool in
                state.pending.append(Entry(id: id, result: result, continuation: continuation))
                guard !state.flushing else { return false }
                state.flushing = true
                return true
            }
            if startFlushing {
                Task { await self.flush() }
            }
        }
    }

    private func flush() async {
        while true {
            let batch = self.state.withLockedValue { state -> [Entry] in
                let batch = state.pending
                state.pending = []
                if batch.isEmpty { state.flushing = false }
                return batch
            }
            if batch.isEmpty { return }
            do {
                let written = try await self.queue.succeed(batch.map { ($0.id, $0.result) }, owner: self.owner)
                for entry in batch { entry.continuation.resume(returning: written.contains(entry.id)) }
            } catch {
                // One at a time, so that one bad result (or a broken connection) does not fail the others.
                for entry in batch {
                    do {
                        let written = try await self.queue.succeed(entry.id, owner: self.owner, result: entry.result)
                        entry.continuation.resume(returning: written)
                    } catch {
                        entry.continuation.resume(throwing: error)
                    }
                }
            }
        }
    }
}
