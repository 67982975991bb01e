import VPPLicensing

/// SQL written from `LicenseStateMachine`, so the ledger's set-based statements follow the machine by construction:
/// for each (state, intent, blocked) the machine's transition becomes one branch. Every fragment is fixed text built
/// from the machine's literals; no value of a request reaches it.
struct LedgerSQL {
    let machine: LicenseStateMachine

    init(reclaim: ReclaimPolicy) {
        self.machine = LicenseStateMachine(reclaim: reclaim)
    }

    /// One (state, intent, blocked) case and the machine's answer.
    private struct Case {
        var state: LicenseState
        var intent: LicenseIntent
        var blocked: Bool
        var transition: LicenseTransition
    }

    /// The transitions of entries the assignments still reach (`ledger_desired d`, rank 0–2).
    private var reached: [Case] {
        LicenseState.allCases.flatMap { state in
            [LicenseIntent.required, .available, .uninstall].flatMap { intent in
                [false, true].compactMap { blocked in
                    self.machine.apply(.intentChanged(intent, blocked: blocked), to: state).map {
                        Case(state: state, intent: intent, blocked: blocked, transition: $0)
                    }
                }
            }
        }
    }

    private static func condition(_ item: Case) -> String {
        "(l.state = '\(item.state.rawValue)' AND d.rank = \(item.intent.rawValue) AND d.blocked = \(item.blocked))"
    }

    private static func any(_ cases: [Case]) -> String {
        cases.isEmpty ? "false" : "(" + cases.map(Self.condition).joined(separator: " OR ") + ")"
    }

    /// The parts of the UPDATE of entries whose intent moves them to another state (the target stays reached), over
    /// `licenses l` joined with `ledger_desired d`: the new state, the new `wait_seq` (NULL for those joining the line:
    /// the ledger gives them their places next, in key order), which rows move, and which of them need Apple to
    /// associate again (for the outbox; a condition on the row as RETURNING sees it, after the move).
    var intentUpdate: (state: String, waitSeq: String, moves: String, associate: String) {
        let moves = self.reached.filter { $0.transition.to != nil && $0.transition.to != $0.state }
        let stateCase = moves.map { "WHEN \(Self.condition($0)) THEN '\($0.transition.to!.rawValue)'" }
            .joined(separator: " ")
        let joins = moves.filter { $0.transition.actions.contains(.joinLine) }
        let leaves = moves.filter { $0.transition.actions.contains(.leaveLine) }
        // RETURNING sees the new row, so the entries to associate are told by the state they moved to: every move
        // into such a state asks Apple to associate (checked here, so a change to the machine cannot break it).
        let associateStates = Set(
            moves.filter { $0.transition.actions.contains(.associateAtApple) }.compactMap(\.transition.to)
        )
        precondition(
            moves.filter { associateStates.contains($0.transition.to!) }.allSatisfy {
                $0.transition.actions.contains(.associateAtApple)
            },
            "a move into a state that asks Apple to associate does not ask it"
        )
        return (
            "CASE \(stateCase) ELSE l.state END",
            // Entries joining the line get their place right after, in key order (an UPDATE has no row order).
            "CASE WHEN \(Self.any(joins)) OR \(Self.any(leaves)) THEN NULL ELSE l.wait_seq END",
            Self.any(moves),
            associateStates.isEmpty
                ? "false" : "l.state IN \(LicenseState.sqlList(associateStates.sorted { $0.rawValue < $1.rawValue }))"
        )
    }

    /// Which entries still reached end on their intent (e.g. UNINSTALL reaching a waiter: nothing to free), over
    /// `licenses l` joined with `ledger_desired d`.
    var intentDelete: String {
        let ends = self.reached.filter { $0.transition.to == nil }
        precondition(ends.allSatisfy { !$0.state.holdsSeat }, "the machine ends a held seat without giving it back")
        return Self.any(ends)
    }

    /// The state a new entry starts in, for `d.rank` and `d.blocked` of `ledger_desired d` (NULL: no entry).
    var initialState: String {
        let branches = [LicenseIntent.required, .available, .uninstall].flatMap { intent in
            [false, true].compactMap { blocked -> String? in
                guard let to = self.machine.apply(.intentChanged(intent, blocked: blocked), to: nil)?.to else {
                    return nil
                }
                return "WHEN d.rank = \(intent.rawValue) AND d.blocked = \(blocked) THEN '\(to.rawValue)'"
            }
        }
        return "CASE " + branches.joined(separator: " ") + " END"
    }

    /// States whose entries go when no assignment reaches the target any more, and those that give their seat back
    /// (`releasing`) or keep it until the removal is reported (`removing`), under this server's reclaim policy.
    var unreached: (delete: [LicenseState], release: [LicenseState], remove: [LicenseState]) {
        var delete: [LicenseState] = []
        var release: [LicenseState] = []
        var remove: [LicenseState] = []
        for state in LicenseState.allCases {
            guard let transition = self.machine.apply(.intentChanged(.none, blocked: false), to: state) else {
                continue
            }
            switch transition.to {
            case nil: delete.append(state)
            case .releasing?: release.append(state)
            case .removing?: remove.append(state)
            case let other?: preconditionFailure("unexpected transition \(state) -> \(other) for an unreached target")
            }
        }
        return (delete, release, remove)
    }
}
