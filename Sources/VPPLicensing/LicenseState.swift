/// Where one target (a device or a user) stands with one asset in the license ledger: the `licenses.state` column.
///
/// `LicenseStateMachine` says which state may follow which; the database refuses any other change (the trigger
/// `licenses_follow_state_machine`, written from `LicenseStateMachine.allowedTransitions`).
public enum LicenseState: String, CaseIterable, Sendable, Hashable {
    /// R21: offered by an AVAILABLE assignment; no seat used until the user asks (RequestApp).
    case available
    /// R15: in line for a seat (`wait_seq` order).
    case waiting
    /// A seat counted here; Apple has been (or is about to be) asked to associate it and has not confirmed.
    case reserved
    /// Apple confirmed the association.
    case granted
    /// R17: UNINSTALL asked; the seat stays held until the device reports the app removed.
    case removing
    /// Apple has been (or is about to be) asked to take the seat back; it stays counted until Apple answers.
    case releasing
    /// Apple refused the license (or the user's registration); no seat is held. `reason` has Apple's answer.
    case failed
    /// The assignment cannot apply to this target (R20: a policy disables the App Store app for the user).
    case notApplicable = "not_applicable"

    /// The states that count against the licenses bought (R15: never more than bought).
    public var holdsSeat: Bool {
        switch self {
        case .reserved, .granted, .removing, .releasing: true
        case .available, .waiting, .failed, .notApplicable: false
        }
    }

    public static let seatHolding: [LicenseState] = allCases.filter(\.holdsSeat)

    /// A SQL list of the states' names, for `state IN (...)`: fixed literals of this type, never input.
    public static func sqlList(_ states: [LicenseState]) -> String {
        "(" + states.map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")"
    }
}

/// What the assignments reaching a target want for it: the strongest action (R13: Required over Available over
/// Uninstall), or nothing when no assignment reaches it any more.
public enum LicenseIntent: Int, CaseIterable, Sendable, Hashable {
    case required = 0
    case available = 1
    case uninstall = 2
    /// No assignment reaches the target (it left the group, the assignment or the target was deleted).
    case none = 3
}

/// What happens to a seat whose target no assignment reaches any more.
public enum ReclaimPolicy: String, Sendable, Hashable, CaseIterable {
    /// Apple is asked at once to take the seat back (the default: seats return to waiters soonest).
    case immediate
    /// The seat stays held as `removing` until the device reports the app removed (R17's rule, applied to every
    /// reclaim).
    case afterRemoval = "after-removal"
}

/// A device's report of one app or book (R17, R23), kept beside the ledger state in `licenses.install_state`.
public enum InstallReport: String, CaseIterable, Sendable, Hashable {
    case none
    case installed
    case failed
    case removed
}
