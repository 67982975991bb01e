import NIOCore
import Testing
import VPPProto
import VPPWire

/// What the server machine's states carry (issue 17): the authentication deadline, the idle clock, each call's
/// deadline and held bytes, the principal, admission and closing. Time is what the test passes in.
@Suite("Server connection state machine: the context its states carry")
struct ServerConnectionContextTests {
    typealias Machine = ServerConnectionStateMachine<String>

    private let t0 = NIODeadline.uptimeNanoseconds(5_000_000_000)

    private func machine(maxCalls: Int = 4, maxCallDuration: TimeAmount? = .seconds(300)) -> Machine {
        Machine(
            maxCallsInFlight: maxCalls,
            authenticationTimeout: .seconds(10),
            idleTimeout: .seconds(60),
            maxCallDuration: maxCallDuration,
            maxFrameBytes: 4096
        )
    }

    private func hello() -> RpcV1.ClientFrame {
        RpcV1.ClientFrame(kind: .hello(RpcV1.Hello(apiKey: "key")))
    }

    private func call(_ id: UInt64, timeoutMs: UInt64 = 0) -> RpcV1.ClientFrame {
        RpcV1.ClientFrame(
            kind: .call(RpcV1.Call(callId: id, method: "/vpp.v1.SystemService/Ping", timeoutMs: timeoutMs))
        )
    }

    /// Opened and authenticated at `t0` as "tenant-a".
    private func authenticated(maxCalls: Int = 4, maxCallDuration: TimeAmount? = .seconds(300)) -> Machine {
        var machine = self.machine(maxCalls: maxCalls, maxCallDuration: maxCallDuration)
        machine.connectionOpened(at: self.t0)
        _ = machine.frameReceived(self.hello(), at: self.t0)
        let succeeded = machine.authenticationSucceeded("tenant-a", at: self.t0)
        #expect(succeeded)
        return machine
    }

    private func reason(_ status: RpcV1.Status) -> String? { status.details.first?.reason }

    @Test("the authentication deadline starts when the connection opens and closes it, not before")
    func authenticationDeadline() {
        var machine = self.machine()
        #expect(machine.authenticationDeadline == nil)
        machine.connectionOpened(at: self.t0)
        #expect(machine.authenticationDeadline == self.t0 + .seconds(10))
        #expect(machine.sweep(at: self.t0 + .seconds(10) - .nanoseconds(1)) == .none)
        _ = machine.frameReceived(self.hello(), at: self.t0 + .seconds(1))
        // Still counting while the key is checked.
        #expect(machine.sweep(at: self.t0 + .seconds(9)) == .none)
        guard case .authenticationTimedOut(let status) = machine.sweep(at: self.t0 + .seconds(10)) else {
            Issue.record("expected the authentication timeout")
            return
        }
        #expect(status.code == .unauthenticated)
        #expect(self.reason(status) == GoAwayReason.authenticationTimeout.rawValue)
        #expect(machine.state == .closed)
        #expect(machine.authenticationSucceeded("late", at: self.t0 + .seconds(11)) == false)
    }

    @Test("the idle timeout counts from the Welcome and from each frame read, and never while a call is in flight")
    func idleClock() {
        var machine = self.authenticated()
        #expect(machine.authenticationDeadline == nil)
        #expect(machine.sweep(at: self.t0 + .seconds(59)) == .none)
        // A frame read at t0 + 59 s restarts the clock.
        _ = machine.frameReceived(self.call(1), at: self.t0 + .seconds(59))
        // A call in flight keeps the connection however long it runs.
        #expect(machine.sweep(at: self.t0 + .seconds(600)) == .none)
        #expect(machine.callFinished(1, status: .ok).action == .sendReply)
        #expect(machine.sweep(at: self.t0 + .seconds(59 + 60) - .nanoseconds(1)) == .none)
        guard case .idleTimedOut(let status) = machine.sweep(at: self.t0 + .seconds(59 + 60)) else {
            Issue.record("expected the idle timeout")
            return
        }
        #expect(status.code == .unavailable)
        #expect(self.reason(status) == GoAwayReason.idleTimeout.rawValue)
        #expect(machine.state == .closed)
    }

    @Test("before the Welcome the idle timeout does nothing: the authentication timeout covers that time")
    func noIdleBeforeWelcome() {
        var machine = self.machine()
        machine.connectionOpened(at: self.t0)
        _ = machine.frameReceived(self.hello(), at: self.t0)
        #expect(machine.idleTimedOut() == .none)
        #expect(machine.state == .authenticating)
    }

    @Test("a call's deadline is its timeout capped by the maximum call duration; it is answered DEADLINE_EXCEEDED once")
    func callDeadlines() {
        var machine = self.authenticated()
        _ = machine.frameReceived(self.call(1, timeoutMs: 500), at: self.t0)
        _ = machine.frameReceived(self.call(2), at: self.t0)
        _ = machine.frameReceived(self.call(3, timeoutMs: 3_600_000), at: self.t0)
        #expect(machine.deadline(of: 1) == self.t0 + .milliseconds(500))
        #expect(machine.deadline(of: 2) == self.t0 + .seconds(300))
        #expect(machine.deadline(of: 3) == self.t0 + .seconds(300))
        #expect(machine.call(1)?.started == self.t0)

        // A timer that fires early answers nothing.
        let early = machine.deadlinePassed(1, at: self.t0 + .milliseconds(499))
        #expect(early.action == .drop)
        #expect(early.call == nil)
        #expect(machine.isInFlight(1))

        let end = machine.deadlinePassed(1, at: self.t0 + .milliseconds(500))
        #expect(end.action == .sendReply)
        #expect(end.stopsWork)
        #expect(end.status.code == .deadlineExceeded)
        guard case .reply(let reply) = end.reply?.kind else {
            Issue.record("expected a final Reply")
            return
        }
        #expect(reply.callId == 1)
        #expect(reply.status?.code == .deadlineExceeded)
        // The handler's own answer, coming later, is dropped.
        #expect(machine.callFinished(1, status: .ok).action == .drop)
    }

    @Test("without a maximum call duration a call without a timeout has no deadline")
    func noDeadline() {
        var machine = self.authenticated(maxCallDuration: nil)
        _ = machine.frameReceived(self.call(1), at: self.t0)
        #expect(machine.isInFlight(1))
        #expect(machine.deadline(of: 1) == nil)
        #expect(machine.deadlinePassed(1, at: self.t0 + .seconds(86_400)).action == .drop)
    }

    @Test("a final Reply comes with its fallback: RESOURCE_EXHAUSTED naming the frame limit, without the message")
    func oversizedReplyFallback() {
        var machine = self.authenticated()
        _ = machine.frameReceived(self.call(1), at: self.t0)
        let end = machine.callFinished(1, status: .ok, payload: [UInt8](repeating: 1, count: 8))
        guard case .reply(let reply) = end.reply?.kind, case .reply(let fallback) = end.oversizedReply?.kind else {
            Issue.record("expected a Reply and its fallback")
            return
        }
        #expect(reply.message?.data.count == 8)
        #expect(reply.status?.code == .ok)
        #expect(fallback.callId == 1)
        #expect(fallback.message == nil)
        #expect(fallback.status?.code == .resourceExhausted)
        #expect(end.oversizedStatus?.message.contains("4096 bytes") == true)
        #expect(end.stopsWork == false)
    }

    @Test("the principal lives in the authenticated states only")
    func principal() {
        var machine = self.machine()
        #expect(machine.principal == nil)
        machine.connectionOpened(at: self.t0)
        _ = machine.frameReceived(self.hello(), at: self.t0)
        #expect(machine.principal == nil)
        _ = machine.authenticationSucceeded("tenant-a", at: self.t0)
        #expect(machine.principal == "tenant-a")
        _ = machine.principalRevoked("revoked")
        #expect(machine.principal == nil)
    }

    @Test("admission: a connection over the limit is refused with CONNECTION_LIMIT and gives no slot back")
    func admission() {
        var refused = self.machine()
        guard case .closeWithError(let status) = refused.connectionLimitReached(3) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(status.code == .resourceExhausted)
        #expect(self.reason(status) == GoAwayReason.connectionLimit.rawValue)
        #expect(status.message.contains("(3)"))
        #expect(refused.state == .closed)
        #expect(refused.connectionClosed().releasesAdmission == false)

        var admitted = self.authenticated()
        #expect(admitted.isAdmitted)
        #expect(admitted.connectionLimitReached(3) == .none)
        #expect(admitted.connectionClosed().releasesAdmission)
        // Given back once.
        #expect(admitted.connectionClosed().releasesAdmission == false)
    }

    @Test("calls over the in-flight limit are refused without taking an id; the connection stays active")
    func refusedCalls() {
        var machine = self.authenticated(maxCalls: 1)
        _ = machine.frameReceived(self.call(1), at: self.t0)
        guard case .send(let frame) = machine.frameReceived(self.call(2), at: self.t0),
            case .reply(let reply) = frame.kind
        else {
            Issue.record("expected a refusal")
            return
        }
        #expect(reply.callId == 2)
        #expect(reply.status?.code == .resourceExhausted)
        #expect(machine.isInFlight(2) == false)
        #expect(machine.lastAcceptedCallID == 1)
        #expect(machine.state == .active)
    }

    @Test("closing: the GoAway is written, then nothing; calls cut by the close keep their bytes until the teardown")
    func closing() {
        var machine = self.authenticated()
        _ = machine.frameReceived(self.call(1), at: self.t0)
        _ = machine.frameReceived(self.call(2), at: self.t0)
        machine.callRouted(1, method: "/vpp.v1.SystemService/Ping", heldBytes: 100)
        machine.callRouted(2, method: "/vpp.v1.SystemService/Ping", heldBytes: 20)
        #expect(machine.call(1)?.method == "/vpp.v1.SystemService/Ping")
        guard case .closeWithError = machine.undecodableFrame("bad") else {
            Issue.record("expected a close")
            return
        }
        // The protocol is over, but the GoAway still goes out (with the last call id).
        #expect(machine.mayWrite)
        #expect(machine.lastAcceptedCallID == 2)
        let started = machine.closeStarted()
        #expect(started)
        #expect(machine.mayWrite == false)
        let again = machine.closeStarted()
        #expect(again == false)
        // A call that ends now is not answered, but the handler learns of its bytes.
        let end = machine.callFinished(2, status: .ok)
        #expect(end.action == .drop)
        #expect(end.call?.heldBytes == 20)
        let teardown = machine.connectionClosed()
        #expect(teardown.calls == [1])
        #expect(teardown.heldBytes == 100)
        #expect(machine.inFlightCount == 0)
    }

    @Test("draining waits for the calls in flight; the last answer closes")
    func drainingWaits() {
        var machine = self.authenticated()
        _ = machine.frameReceived(self.call(1, timeoutMs: 1000), at: self.t0)
        _ = machine.frameReceived(self.call(2, timeoutMs: 2000), at: self.t0)
        guard case .sendGoAway(let goAway) = machine.beginDraining() else {
            Issue.record("expected a GoAway")
            return
        }
        #expect(goAway.lastCallId == 2)
        #expect(machine.state == .draining)
        // Deadlines still run while draining.
        #expect(machine.deadlinePassed(1, at: self.t0 + .seconds(1)).action == .sendReply)
        #expect(machine.state == .draining)
        #expect(machine.deadlinePassed(2, at: self.t0 + .seconds(2)).action == .sendReplyAndClose)
        #expect(machine.state == .closed)
    }
}
