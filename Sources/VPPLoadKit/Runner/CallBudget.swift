import Atomics

/// Hands out call indices to the run's tasks until the plan's bound is reached. Shared by every task: one atomic
/// counter, and a deadline that only needs reading.
final class CallBudget: Sendable {
    private let issued = ManagedAtomic<Int>(0)
    private let limit: Int?
    private let deadline: ContinuousClock.Instant?

    init(bound: LoadPlan.Bound, start: ContinuousClock.Instant) {
        switch bound {
        case .calls(let count):
            self.limit = count
            self.deadline = nil
        case .duration(let duration):
            self.limit = nil
            self.deadline = start + duration
        }
    }

    /// The index of the next call to make, or nil when the run is over.
    func next() -> Int? {
        if let deadline, ContinuousClock.now >= deadline { return nil }
        let index = self.issued.loadThenWrappingIncrement(ordering: .relaxed)
        if let limit, index >= limit { return nil }
        return index
    }
}
