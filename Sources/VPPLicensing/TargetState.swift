/// R23: where one target stands with one asset as every RPC reports it (the proto's `InstallState`). One function,
/// `TargetState.of`, turns the ledger state, the device's report and the user's invitation into it, so
/// ListLicenses, GetUserStatus, GetDeviceStatus, RequestApp, GetLicenseUsage and the assignments' counts agree.
public enum TargetState: String, CaseIterable, Sendable, Hashable {
    case installed
    /// Licensed; the install has not been reported yet.
    case pending
    case waitingForLicense = "waiting_for_license"
    /// R20: licensed to the user, who has not accepted Apple's VPP invitation yet.
    case waitingForInvitation = "waiting_for_invitation"
    case failed
    case notApplicable = "not_applicable"
    /// R17: uninstall asked; the license is freed once the removal is reported.
    case removing
    /// Reported removed; the license is being given back to Apple.
    case removed
    /// R21: offered, not asked for.
    case available

    /// The one mapping. `invitationPending`: a user license whose user has not accepted Apple's invitation
    /// (not registered at Apple yet, or registered and invited) (R20).
    public static func of(_ state: LicenseState, install: InstallReport, invitationPending: Bool) -> TargetState {
        switch state {
        case .waiting: return .waitingForLicense
        case .available: return .available
        case .failed: return .failed
        case .notApplicable: return .notApplicable
        case .removing, .releasing: return install == .removed ? .removed : .removing
        case .reserved, .granted:
            switch install {
            case .installed: return .installed
            case .failed: return .failed
            case .none, .removed: return invitationPending ? .waitingForInvitation : .pending
            }
        }
    }

    /// Every (ledger state, report, invitation) that maps to `self`: for filters written in SQL.
    public var sources: [(state: LicenseState, install: InstallReport, invitationPending: Bool)] {
        LicenseState.allCases.flatMap { state in
            InstallReport.allCases.flatMap { install in
                [false, true].compactMap { invited in
                    Self.of(state, install: install, invitationPending: invited) == self
                        ? (state, install, invited) : nil
                }
            }
        }
    }

    /// Why the target stands here and what would change it (R23). `stored` is the ledger's own reason (Apple's
    /// answer, a policy), `installReason` the device's; `queuePosition` is 1 for the next in line.
    public func reason(
        ledgerState: LicenseState,
        stored: String,
        installReason: String,
        queuePosition: Int,
        licenseType: String
    ) -> String {
        switch self {
        case .installed:
            return "The device reported the \(licenseType == "user" ? "app installed for this user" : "app installed")."
        case .pending:
            if ledgerState == .reserved {
                return
                    "A license is held for this target and Apple has been asked to assign it; the install follows once Apple confirms (R16)."
            }
            return "Licensed at Apple; waiting for the device to report the install (R16)."
        case .waitingForLicense:
            let line =
                "Place \(queuePosition) in line: every license bought is in use. The license comes when one is freed (an UNINSTALL completes, a target leaves its group) or more are bought (R15)."
            return stored.isEmpty ? line : stored + " " + line
        case .waitingForInvitation:
            return
                "Licensed to the user, who has not accepted Apple's VPP invitation yet; the install goes ahead once they do. Send them the invitation link (the user's invitation_url) (R20)."
        case .failed:
            if !installReason.isEmpty, ledgerState != .failed {
                return "The device reported the install failed: \(installReason)"
            }
            if !stored.isEmpty { return stored }
            return "The install failed; no reason was reported."
        case .notApplicable:
            return stored.isEmpty
                ? "The assignment cannot apply to this target (R20)."
                : stored
        case .removing:
            return "UNINSTALL asked: the license stays held until the device reports the app removed (R17)."
        case .removed:
            return
                "The device reported the app removed: the license is being given back to Apple and goes to the next in line (R17)."
        case .available:
            return
                "Offered by an AVAILABLE assignment: no license is used until the user asks for it (RequestApp) (R21)."
        }
    }
}
