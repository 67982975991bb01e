public import Foundation

/// Where a job is in its life. `queued`, `running` and `retrying` are active: at most one active job exists per
/// (kind, subject) (C6); the other three are final and stay as history until pruned.
public enum JobState: String, Sendable, Hashable, CaseIterable {
    case queued
    case running
    /// Failed an attempt and waits for `runAfter` to be claimed again.
    case retrying
    case succeeded
    case failed
    case cancelled

    public var isActive: Bool {
        switch self {
        case .queued, .running, .retrying: true
        case .succeeded, .failed, .cancelled: false
        }
    }
}

/// A row of `vpp_control.jobs`.
public struct JobRecord: Sendable, Hashable {
    public var id: UUID
    /// What the job does (`token.sync`, …); a worker claims only the kinds it has handlers for.
    public var kind: String
    /// The tenant the job works for; nil for platform work.
    public var tenantID: UUID?
    /// What the job works on (a token id, …): one active job per (kind, subject).
    public var subject: String
    public var state: JobState
    /// Why it was queued (`schedule`, `sync-now`, …), free text for people.
    public var trigger: String
    /// JSON text, as PostgreSQL's jsonb writes it (keys sorted, its own spacing).
    public var payload: String
    /// The attempt running now or last run: 0 before the first claim, 1 for the first run, …
    public var attempt: Int
    public var maxAttempts: Int
    /// When the job may be claimed (next). For a running job: when its current attempt became ready to run (the lease
    /// expiry for a job taken over from a worker that stopped), so `startedAt - runAfter` is the time it waited.
    public var runAfter: Date
    public var queuedAt: Date
    /// When the current (or last) attempt started.
    public var startedAt: Date?
    public var finishedAt: Date?
    /// The worker holding the job while it runs (`host:pid:uuid`).
    public var leaseOwner: String?
    public var leaseExpiresAt: Date?
    public var phase: String
    public var itemsDone: Int64
    public var itemsTotal: Int64
    /// The last attempt's error, for people; empty when there was none.
    public var error: String
    /// JSON text written by the handler when the job ended.
    public var result: String
    /// The last change of state or progress (heartbeats do not count).
    public var updatedAt: Date
}

/// A job to queue (see `JobQueue.enqueue`).
public struct NewJob: Sendable, Hashable {
    public var kind: String
    public var tenantID: UUID?
    public var subject: String
    public var trigger: String
    /// JSON text (any JSON value; an object by convention).
    public var payload: String
    public var maxAttempts: Int
    /// Not before this time; nil: at once.
    public var runAfter: Date?

    public init(
        kind: String,
        tenantID: UUID?,
        subject: String,
        trigger: String = "",
        payload: String = "{}",
        maxAttempts: Int = 10,
        runAfter: Date? = nil
    ) {
        self.kind = kind
        self.tenantID = tenantID
        self.subject = subject
        self.trigger = trigger
        self.payload = payload
        self.maxAttempts = maxAttempts
        self.runAfter = runAfter
    }
}

/// How many active jobs there are, by kind and state (final states are history and not counted).
public struct JobQueueDepth: Sendable, Hashable {
    public var byKind: [String: [JobState: Int]]

    public init(byKind: [String: [JobState: Int]]) {
        self.byKind = byKind
    }

    /// Every kind together.
    public var total: [JobState: Int] {
        var total: [JobState: Int] = [:]
        for states in self.byKind.values {
            for (state, count) in states { total[state, default: 0] += count }
        }
        return total
    }
}
