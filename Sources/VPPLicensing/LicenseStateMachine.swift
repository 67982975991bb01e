/// Something that happens to one ledger entry (one asset, one target).
public enum LicenseEvent: Sendable, Hashable {
    /// The assignments and the directory were derived again: the target's strongest action is now `intent`.
    /// `blocked`: user licensing for a user whose App Store app a policy disables (R20).
    case intentChanged(LicenseIntent, blocked: Bool)
    /// A seat is free and this waiter is first in line (R15).
    case seatFreed
    /// Apple confirmed the association (or answered "already assigned", 9616).
    case appleAssociated
    /// Apple answered "not enough licenses" (9709): Apple has fewer seats than the last sync said.
    case appleHasNoLicense
    /// Apple refused the association for another reason, or refused to register the user.
    case appleRefused
    /// Apple took the seat back (or answered "no such license", 9610).
    case appleDisassociated
    /// Apple cannot take the seat back: the asset is not revocable (9706; books). The license stays with its user.
    case appleCannotTakeBack
    /// The device reported the app removed (R17).
    case removalReported
    /// R21: the user asked for an AVAILABLE app.
    case requested
    /// The device or user was deleted from the directory: its entries go, and a seat it held is given back.
    case targetDeleted

    /// Every event, for exhaustive tests and for deriving the allowed transitions.
    public static let all: [LicenseEvent] =
        LicenseIntent.allCases.flatMap { intent in
            [false, true].map { LicenseEvent.intentChanged(intent, blocked: $0) }
        }
        + [
            .seatFreed, .appleAssociated, .appleHasNoLicense, .appleRefused, .appleDisassociated, .appleCannotTakeBack,
            .removalReported, .requested, .targetDeleted,
        ]
}

/// What must be done beside the change of state (in the same transaction).
public enum LicenseAction: Sendable, Hashable {
    /// Write an `associate` row to the outbox: Apple must assign the seat.
    case associateAtApple
    /// Write a `disassociate` row to the outbox: Apple must take the seat back. An association of the same entry that
    /// was never sent is cancelled instead (and then nothing is sent at all).
    case disassociateAtApple
    /// Take a place at the end of the line (`wait_seq` from the sequence).
    case joinLine
    /// Take the first place in the line (the seat was promised; Apple had none after all).
    case joinLineAtFront
    /// Leave the line (`wait_seq` cleared).
    case leaveLine
    /// A seat came free: serve the asset's waiters in line order.
    case serveWaiters
    /// Apple's counts are stale: sync the token's counts again so the line moves once seats are known (R8, R15).
    case refreshAppleCounts
}

/// The outcome of an event: the entry's next state (nil: the entry goes) and what must be done.
public struct LicenseTransition: Sendable, Hashable {
    public var from: LicenseState?
    public var to: LicenseState?
    public var actions: [LicenseAction]

    public init(from: LicenseState?, to: LicenseState?, actions: [LicenseAction] = []) {
        self.from = from
        self.to = to
        self.actions = actions
    }
}

/// The license ledger's rules for one entry, as a value type without I/O (R15–R23): which state follows which on
/// which event, and what must be done with it. `LicenseLedger` (VPPStorage) performs the transitions in SQL over many
/// entries at once; the database refuses any change of state this type does not allow.
///
/// States are `LicenseState`; nil stands for "no entry". `apply` returns nil when the event changes nothing in that
/// state (it does not apply there), so callers can tell "stays" from "moves".
public struct LicenseStateMachine: Sendable, Hashable {
    public var reclaim: ReclaimPolicy

    public init(reclaim: ReclaimPolicy = .immediate) {
        self.reclaim = reclaim
    }

    public func apply(_ event: LicenseEvent, to state: LicenseState?) -> LicenseTransition? {
        func move(_ to: LicenseState?, _ actions: LicenseAction...) -> LicenseTransition {
            LicenseTransition(from: state, to: to, actions: actions)
        }
        switch (state, event) {
        case (nil, .targetDeleted):
            return nil
        case (let held?, .targetDeleted) where held.holdsSeat && held != .releasing:
            return move(nil, .disassociateAtApple, .serveWaiters)
        case (_, .targetDeleted):
            return move(nil, .serveWaiters)

        // A target the assignments reach for the first time.
        case (nil, .intentChanged(.required, blocked: true)), (nil, .intentChanged(.available, blocked: true)):
            return move(.notApplicable)
        case (nil, .intentChanged(.required, blocked: false)):
            // Behind everyone already waiting; takes a free seat at once when nobody is (R15).
            return move(.waiting, .joinLine, .serveWaiters)
        case (nil, .intentChanged(.available, blocked: false)):
            return move(.available)
        case (nil, _):
            return nil

        // R21: offered.
        case (.available?, .intentChanged(.required, blocked: false)):
            return move(.waiting, .joinLine, .serveWaiters)
        case (.available?, .intentChanged(.required, blocked: true)),
            (.available?, .intentChanged(.available, blocked: true)):
            return move(.notApplicable)
        case (.available?, .intentChanged(.uninstall, _)), (.available?, .intentChanged(.none, _)):
            return move(nil)
        case (.available?, .requested):
            return move(.waiting, .joinLine, .serveWaiters)
        case (.available?, _):
            return nil

        // R15: in line.
        case (.waiting?, .intentChanged(.available, blocked: false)):
            return move(.available, .leaveLine)
        case (.waiting?, .intentChanged(.required, blocked: true)),
            (.waiting?, .intentChanged(.available, blocked: true)):
            return move(.notApplicable, .leaveLine, .serveWaiters)
        case (.waiting?, .intentChanged(.uninstall, _)), (.waiting?, .intentChanged(.none, _)):
            return move(nil, .leaveLine, .serveWaiters)
        case (.waiting?, .seatFreed):
            return move(.reserved, .leaveLine, .associateAtApple)
        case (.waiting?, _):
            return nil

        // A seat held, Apple asked.
        case (.reserved?, .appleAssociated):
            return move(.granted)
        case (.reserved?, .appleHasNoLicense):
            // R15: Apple has fewer seats than counted. Back to the front of the line until the counts are re-read.
            return move(.waiting, .joinLineAtFront, .refreshAppleCounts)
        case (.reserved?, .appleRefused):
            return move(.failed, .serveWaiters)
        case (.reserved?, .intentChanged(.uninstall, _)), (.granted?, .intentChanged(.uninstall, _)):
            return move(.removing)
        case (.reserved?, .intentChanged(.none, _)), (.granted?, .intentChanged(.none, _)):
            switch self.reclaim {
            case .immediate: return move(.releasing, .disassociateAtApple)
            case .afterRemoval: return move(.removing)
            }
        case (.reserved?, _), (.granted?, _):
            // Required or Available (R21: a seat once taken stays), a removal report of a Required app (the MDM
            // installs it again), a repeated answer: the seat stays.
            return nil

        // R17: uninstall asked, seat held.
        case (.removing?, .intentChanged(.required, _)):
            // Wanted again before the removal: keep the seat, and have Apple confirm it (an association Apple already
            // holds is answered "already assigned", which counts as confirmed).
            return move(.reserved, .associateAtApple)
        case (.removing?, .intentChanged(.none, _)) where self.reclaim == .immediate:
            return move(.releasing, .disassociateAtApple)
        case (.removing?, .removalReported):
            return move(.releasing, .disassociateAtApple)
        case (.removing?, .appleHasNoLicense), (.removing?, .appleRefused):
            // The association it held the seat for never happened: nothing to remove, the seat is free. The entry
            // shows Apple's answer until reconciling removes it (failed + UNINSTALL ends it).
            return move(.failed, .serveWaiters)
        case (.removing?, _):
            return nil

        // Apple asked to take the seat back.
        case (.releasing?, .appleDisassociated):
            // The seat is free: the next in line gets it (R17), and a target that is wanted again joins the line.
            return move(nil, .serveWaiters)
        case (.releasing?, .appleCannotTakeBack):
            // The seat is spent: the entry goes, the license counts as held elsewhere (nothing freed, nobody served).
            return move(nil)
        case (.releasing?, .appleHasNoLicense), (.releasing?, .appleRefused):
            // The association never happened; the disassociation that follows is answered "no such license".
            return move(.failed, .serveWaiters)
        case (.releasing?, _):
            return nil

        // Apple refused.
        case (.failed?, .intentChanged(.uninstall, _)), (.failed?, .intentChanged(.none, _)):
            return move(nil)
        case (.failed?, _):
            return nil

        // R20: cannot apply.
        case (.notApplicable?, .intentChanged(.required, blocked: false)):
            return move(.waiting, .joinLine, .serveWaiters)
        case (.notApplicable?, .intentChanged(.available, blocked: false)):
            return move(.available)
        case (.notApplicable?, .intentChanged(.uninstall, _)), (.notApplicable?, .intentChanged(.none, _)):
            return move(nil)
        case (.notApplicable?, _):
            return nil
        }
    }

    /// Every (from, to) pair some event can cause, nil meaning "no entry". The database allows exactly these.
    public var allowedTransitions: Set<Pair> {
        var pairs: Set<Pair> = []
        for state in [nil] + LicenseState.allCases.map(Optional.some) {
            for event in LicenseEvent.all {
                if let transition = self.apply(event, to: state), transition.to != transition.from {
                    pairs.insert(Pair(from: transition.from, to: transition.to))
                }
            }
        }
        return pairs
    }

    /// The pairs every reclaim policy allows: what the database's guard accepts (the policy is a setting of each
    /// server, and servers with different settings may share one database).
    public static var allowedTransitionsUnderAnyPolicy: Set<Pair> {
        ReclaimPolicy.allCases.reduce(into: []) { $0.formUnion(LicenseStateMachine(reclaim: $1).allowedTransitions) }
    }

    public struct Pair: Sendable, Hashable, Comparable, CustomStringConvertible {
        public var from: LicenseState?
        public var to: LicenseState?

        public init(from: LicenseState?, to: LicenseState?) {
            self.from = from
            self.to = to
        }

        public var description: String { "\(self.from?.rawValue ?? "none") -> \(self.to?.rawValue ?? "none")" }

        public static func < (lhs: Pair, rhs: Pair) -> Bool { lhs.description < rhs.description }
    }
}
