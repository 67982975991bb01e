/// A job's lifecycle (C6): which event moves a job from which state to which. `JobQueue`'s SQL takes the states it
/// matches and writes from here (`JobEvent.from` in its WHERE clauses, `JobEvent.to` in its SET), so the queue's
/// statements follow this type, and `JobLifecycleTests` checks the type (every state reachable, finished states final)
/// and, against a real database, that every statement moves jobs only along these edges.
///
/// ```
///                  ┌───────── cancel ─────────┐ (from any active state)
///  enqueue ──► queued ──claim──► running ──succeed──► succeeded
///                ▲   retrying ──claim──┘ │ │ │
///                │      ▲                │ │ └──fail / retry (last attempt) / lease lost on the last attempt──► failed
///                │      └──retry─────────┘ └──takeOver (lease expired, attempts left)──► running
///                └──────release──────────┘
/// ```
public enum JobEvent: String, Sendable, Hashable, CaseIterable {
    /// A new job (joining the active one of the same kind and subject instead, when there is one).
    case enqueue
    /// A worker takes a ready job (`run_after` passed): its next attempt starts.
    case claim
    /// A worker takes a job whose lease expired (its worker stopped) while attempts are left: the next attempt.
    case takeOver
    /// The lease of the last allowed attempt expired: the job fails.
    case leaseLostOnLastAttempt
    /// The attempt ended with an error: the job waits and is claimed again, or fails when it was the last attempt.
    case retry
    /// The attempt ended with an error that another attempt cannot mend.
    case fail
    case succeed
    /// A worker shutting down gives the job back; the attempt is not counted.
    case release
    /// The job's subject went (a token deleted, …).
    case cancel

    /// The states a job may be in for this event to apply; empty for `enqueue` (the job does not exist yet).
    public var from: Set<JobState> {
        switch self {
        case .enqueue: []
        case .claim: [.queued, .retrying]
        case .takeOver, .leaseLostOnLastAttempt, .retry, .fail, .succeed, .release: [.running]
        case .cancel: JobLifecycle.active
        }
    }

    /// The states the event may leave the job in (`retry` either waits or, on the last attempt, fails).
    public var to: Set<JobState> {
        switch self {
        case .enqueue, .release: [.queued]
        case .claim, .takeOver: [.running]
        case .leaseLostOnLastAttempt, .fail: [.failed]
        case .retry: [.retrying, .failed]
        case .succeed: [.succeeded]
        case .cancel: [.cancelled]
        }
    }
}

public enum JobLifecycle {
    /// The states of a job that is not finished: at most one per (kind, subject).
    public static let active: Set<JobState> = Set(JobState.allCases.filter(\.isActive))
    /// Finished jobs are history: no event leaves these (pruning deletes them).
    public static let finished: Set<JobState> = Set(JobState.allCases.filter { !$0.isActive })

    /// Every (from, to) pair some event allows; `from` nil is a new job.
    public static var edges: Set<Edge> {
        var edges: Set<Edge> = []
        for event in JobEvent.allCases {
            let sources: [JobState?] = event.from.isEmpty ? [nil] : event.from.map { $0 }
            for source in sources {
                for target in event.to { edges.insert(Edge(from: source, to: target)) }
            }
        }
        return edges
    }

    public struct Edge: Sendable, Hashable, CustomStringConvertible {
        public var from: JobState?
        public var to: JobState
        public init(from: JobState?, to: JobState) {
            self.from = from
            self.to = to
        }
        public var description: String { "\(self.from?.rawValue ?? "new") -> \(self.to.rawValue)" }
    }

    /// `states` as an SQL list, `('queued', 'retrying')`, in a fixed order: for `state IN …` in the queue's SQL.
    static func sqlList(_ states: Set<JobState>) -> String {
        "(" + JobState.allCases.filter(states.contains).map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")"
    }

    /// The one state `event` leaves a job in, as an SQL literal (for events with a single target).
    static func sqlTarget(_ event: JobEvent) -> String {
        precondition(event.to.count == 1, "\(event) has more than one target state")
        return "'\(event.to.first!.rawValue)'"
    }
}

extension JobEvent {
    /// `state IN (…)` for this event's source states, for the queue's WHERE clauses.
    var sqlFrom: String { JobLifecycle.sqlList(self.from) }
    /// This event's one target state as an SQL literal, for the queue's SET clauses.
    var sqlTo: String { JobLifecycle.sqlTarget(self) }
}
