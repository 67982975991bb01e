import Synchronization

/// How many bytes of frames a server holds for all its connections at once (issue 16): what frames still arriving
/// announced (a peer that sends a length prefix and then the body slowly, or never, holds that), and the requests of
/// calls in flight. Past the budget a new partial frame is refused (`FrameError.overBudget`) instead of buffered, and
/// a call is answered RESOURCE_EXHAUSTED instead of run.
public final class FrameBudget: Sendable {
    public let limit: Int
    private let used = Atomic<Int>(0)

    public init(limit: Int) {
        precondition(limit > 0, "the frame budget must be positive")
        self.limit = limit
    }

    /// Bytes announced by partial frames right now.
    public var inUse: Int { self.used.load(ordering: .relaxed) }

    /// Reserves `bytes`; false (and nothing reserved) when they do not fit.
    public func reserve(_ bytes: Int) -> Bool {
        var current = self.used.load(ordering: .relaxed)
        while true {
            guard current + bytes <= self.limit else { return false }
            let (exchanged, original) = self.used.compareExchange(
                expected: current,
                desired: current + bytes,
                ordering: .relaxed
            )
            if exchanged { return true }
            current = original
        }
    }

    public func release(_ bytes: Int) {
        self.used.subtract(bytes, ordering: .relaxed)
    }
}

/// One connection's frame limits, shared by its decoder and its handler (both on the connection's event loop):
/// until the connection authenticated, frames are held to `preAuthenticationBytes` (only a Hello may arrive, well
/// under 1 KiB); after, to `maxFrameBytes`. The bytes a partial frame announced are reserved in the server's
/// `FrameBudget` while it arrives, and given back when it is complete or the connection closes.
public final class FrameLimits: Sendable {
    public let preAuthenticationBytes: Int
    public let maxFrameBytes: Int
    public let budget: FrameBudget?
    private let state: Mutex<(authenticated: Bool, reserved: Int)>

    public init(preAuthenticationBytes: Int, maxFrameBytes: Int, budget: FrameBudget?) {
        precondition(
            preAuthenticationBytes > 0 && preAuthenticationBytes <= maxFrameBytes,
            "pre-authentication limit out of range"
        )
        self.preAuthenticationBytes = preAuthenticationBytes
        self.maxFrameBytes = maxFrameBytes
        self.budget = budget
        self.state = Mutex((false, 0))
    }

    /// One limit, always, and no budget (a client, a test peer).
    public convenience init(maxFrameBytes: Int) {
        self.init(preAuthenticationBytes: maxFrameBytes, maxFrameBytes: maxFrameBytes, budget: nil)
        self.authenticated()
    }

    /// The limit in force for the next frame.
    public var current: Int {
        self.state.withLock { $0.authenticated } ? self.maxFrameBytes : self.preAuthenticationBytes
    }

    /// The connection authenticated: full-size frames from now on.
    public func authenticated() {
        self.state.withLock { $0.authenticated = true }
    }

    /// Reserves what a partial frame announced (once per frame). False when the server's budget has no room.
    func reserve(_ bytes: Int) -> Bool {
        guard let budget = self.budget else { return true }
        return self.state.withLock { state in
            guard state.reserved == 0 else { return true }
            guard budget.reserve(bytes) else { return false }
            state.reserved = bytes
            return true
        }
    }

    /// Gives back what the partial frame reserved: it is complete, or the connection closed. Idempotent.
    public func releaseReservation() {
        let bytes = self.state.withLock { state in
            defer { state.reserved = 0 }
            return state.reserved
        }
        if bytes > 0 { self.budget?.release(bytes) }
    }
}
