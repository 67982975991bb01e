import Testing
import VPPLicensing

/// The ledger's rules without a database: every state under every event, for both reclaim policies.
@Suite("LicenseStateMachine")
struct LicenseStateMachineTests {
    static let states: [LicenseState?] = [nil] + LicenseState.allCases.map(Optional.some)
    static let machines = ReclaimPolicy.allCases.map { LicenseStateMachine(reclaim: $0) }

    @Test("R15: no event gives a seat except a free seat to a waiter, and a required target keeping its seat")
    func seatsAreOnlyTakenFromTheLine() {
        for machine in Self.machines {
            for state in Self.states {
                for event in LicenseEvent.all {
                    guard let transition = machine.apply(event, to: state), let to = transition.to else { continue }
                    let before = state?.holdsSeat ?? false
                    if to.holdsSeat && !before {
                        #expect(state == .waiting && event == .seatFreed, "\(state as Any) on \(event) takes a seat")
                    }
                }
            }
        }
    }

    @Test("R15: every seat taken is asked of Apple, every seat given back is told to Apple")
    func appleHearsOfEverySeat() {
        for machine in Self.machines {
            for state in Self.states {
                for event in LicenseEvent.all {
                    guard let transition = machine.apply(event, to: state) else { continue }
                    if transition.to == .reserved {
                        #expect(transition.actions.contains(.associateAtApple), "\(state as Any) on \(event)")
                    }
                    if transition.to == .releasing {
                        #expect(transition.actions.contains(.disassociateAtApple), "\(state as Any) on \(event)")
                    }
                }
            }
        }
    }

    @Test("R15: a seat never disappears without Apple taking it back or Apple's refusal")
    func heldSeatsLeaveOnlyThroughApple() {
        for machine in Self.machines {
            for state in LicenseState.allCases where state.holdsSeat {
                for event in LicenseEvent.all {
                    guard let transition = machine.apply(event, to: state), !(transition.to?.holdsSeat ?? false) else {
                        continue
                    }
                    let throughApple = [
                        LicenseEvent.appleDisassociated, .appleRefused, .appleHasNoLicense, .appleCannotTakeBack,
                    ]
                    .contains(event)
                    let toldApple = transition.actions.contains(.disassociateAtApple)
                    let alreadyReleasing = state == .releasing && event == .targetDeleted
                    #expect(throughApple || toldApple || alreadyReleasing, "\(state) on \(event) drops a seat silently")
                    // R17: the line moves whenever a seat frees; except when Apple had no seat after all (9709 on a
                    // reserved seat): then nothing was freed, and the counts are read again instead.
                    if state == .reserved && event == .appleHasNoLicense {
                        #expect(transition.actions.contains(.refreshAppleCounts))
                    } else if event == .appleCannotTakeBack {
                        // 9706: the seat is not freed (it stays with its user at Apple), so nobody is served.
                        #expect(!transition.actions.contains(.serveWaiters))
                    } else {
                        #expect(
                            transition.actions.contains(.serveWaiters),
                            "\(state) on \(event) frees a seat without serving the line"
                        )
                    }
                }
            }
        }
    }

    @Test("R17: UNINSTALL keeps the seat until the removal is reported, then gives it back to Apple")
    func uninstallFreesAfterRemoval() {
        let machine = LicenseStateMachine()
        for held in [LicenseState.reserved, .granted] {
            #expect(machine.apply(.intentChanged(.uninstall, blocked: false), to: held)?.to == .removing)
        }
        let removed = machine.apply(.removalReported, to: .removing)
        #expect(removed?.to == .releasing)
        #expect(removed?.actions.contains(.disassociateAtApple) == true)
        let confirmed = machine.apply(.appleDisassociated, to: .releasing)
        #expect(confirmed?.to == nil)
        #expect(confirmed?.actions.contains(.serveWaiters) == true)
        // A removal report of an app still required changes nothing in the ledger.
        #expect(machine.apply(.removalReported, to: .granted) == nil)
    }

    @Test("The reclaim policy decides what happens to a seat whose target left")
    func reclaimPolicy() {
        #expect(
            LicenseStateMachine(reclaim: .immediate).apply(.intentChanged(.none, blocked: false), to: .granted)?.to
                == .releasing
        )
        #expect(
            LicenseStateMachine(reclaim: .afterRemoval).apply(.intentChanged(.none, blocked: false), to: .granted)?.to
                == .removing
        )
        #expect(
            LicenseStateMachine(reclaim: .afterRemoval).apply(.intentChanged(.none, blocked: false), to: .removing)
                == nil
        )
        #expect(
            LicenseStateMachine(reclaim: .immediate).apply(.intentChanged(.none, blocked: false), to: .removing)?.to
                == .releasing
        )
    }

    @Test("R15: 9709 puts the target back at the front of the line and asks for Apple's counts again")
    func noLicenseAtApple() {
        let transition = LicenseStateMachine().apply(.appleHasNoLicense, to: .reserved)
        #expect(transition?.to == .waiting)
        #expect(transition?.actions.contains(.joinLineAtFront) == true)
        #expect(transition?.actions.contains(.refreshAppleCounts) == true)
    }

    @Test("R20, R21: new targets start where their intent says; blocked users are not applicable")
    func firstStates() {
        let machine = LicenseStateMachine()
        #expect(machine.apply(.intentChanged(.required, blocked: false), to: nil)?.to == .waiting)
        #expect(machine.apply(.intentChanged(.available, blocked: false), to: nil)?.to == .available)
        #expect(machine.apply(.intentChanged(.required, blocked: true), to: nil)?.to == .notApplicable)
        #expect(machine.apply(.intentChanged(.uninstall, blocked: false), to: nil) == nil)
        #expect(machine.apply(.intentChanged(.none, blocked: false), to: nil) == nil)
        #expect(machine.apply(.requested, to: .available)?.to == .waiting)
        #expect(machine.apply(.intentChanged(.required, blocked: false), to: .notApplicable)?.to == .waiting)
    }

    @Test("Every state can be reached from no entry, and every entry can end")
    func reachability() {
        for machine in Self.machines {
            var reached: Set<LicenseState?> = [nil]
            var frontier: [LicenseState?] = [nil]
            while let state = frontier.popLast() {
                for event in LicenseEvent.all {
                    guard let next = machine.apply(event, to: state)?.to, !reached.contains(next) else { continue }
                    reached.insert(next)
                    frontier.append(next)
                }
            }
            #expect(reached.count == LicenseState.allCases.count + 1, "unreachable under \(machine.reclaim)")
            for state in LicenseState.allCases {
                #expect(machine.apply(.targetDeleted, to: state)?.to == nil)
            }
        }
    }

    @Test("Allowed transitions are exactly what some event causes, under either policy")
    func allowedTransitions() {
        let pairs = LicenseStateMachine.allowedTransitionsUnderAnyPolicy
        #expect(pairs.contains(.init(from: .waiting, to: .reserved)))
        #expect(pairs.contains(.init(from: .removing, to: .releasing)))
        #expect(!pairs.contains(.init(from: .available, to: .reserved)), "R21: an offer is not a seat")
        #expect(!pairs.contains(.init(from: nil, to: .granted)), "nothing is granted without Apple")
        #expect(!pairs.contains(.init(from: .failed, to: .reserved)))
        #expect(!pairs.contains(.init(from: .waiting, to: .granted)))
    }
}

@Suite("TargetState")
struct TargetStateTests {
    @Test("R23: every combination maps to one state with a non-empty reason")
    func everyCombination() {
        for state in LicenseState.allCases {
            for install in InstallReport.allCases {
                for invited in [false, true] {
                    let target = TargetState.of(state, install: install, invitationPending: invited)
                    let reason = target.reason(
                        ledgerState: state,
                        stored: "",
                        installReason: "",
                        queuePosition: 3,
                        licenseType: "user"
                    )
                    #expect(!reason.isEmpty)
                    #expect(
                        target.sources.contains {
                            $0.state == state && $0.install == install && $0.invitationPending == invited
                        }
                    )
                }
            }
        }
    }

    @Test("R20: a user license whose user has not accepted is waiting for the invitation, not pending")
    func invitation() {
        #expect(TargetState.of(.granted, install: .none, invitationPending: true) == .waitingForInvitation)
        #expect(TargetState.of(.reserved, install: .none, invitationPending: true) == .waitingForInvitation)
        #expect(TargetState.of(.granted, install: .none, invitationPending: false) == .pending)
        #expect(TargetState.of(.granted, install: .installed, invitationPending: true) == .installed)
        #expect(TargetState.of(.waiting, install: .none, invitationPending: true) == .waitingForLicense)
    }

    @Test("R15, R23: a waiter's reason says its place and what would move it")
    func waitingReason() {
        let reason = TargetState.waitingForLicense.reason(
            ledgerState: .waiting,
            stored: "",
            installReason: "",
            queuePosition: 4,
            licenseType: "device"
        )
        #expect(reason.contains("Place 4"))
        #expect(reason.contains("R15"))
    }
}

@Suite("LedgerCounts")
struct LedgerCountsTests {
    @Test("R15: in use counts every seat held here, reserved included, and available is what is left")
    func meaning() {
        let counts = LedgerCounts(total: 34, unlimited: false, heldElsewhere: 0, held: 20, reserved: 6, waiting: 3)
        #expect(counts.inUse == 20)
        #expect(counts.available == 14)
        #expect(counts.overAssigned == 0)
        let refunded = LedgerCounts(total: 5, unlimited: false, heldElsewhere: 1, held: 8, reserved: 0, waiting: 0)
        #expect(refunded.available == 0)
        #expect(refunded.overAssigned == 4)
        let free = LedgerCounts(
            total: Int(Int32.max),
            unlimited: true,
            heldElsewhere: 0,
            held: 3,
            reserved: 1,
            waiting: 0
        )
        #expect(free.available == nil)
        #expect(free.overAssigned == 0)
    }
}
