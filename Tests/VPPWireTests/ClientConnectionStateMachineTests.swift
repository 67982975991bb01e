import NIOCore
import Testing
import VPPProto
import VPPWire

/// The client's connection machine (issue 17): the Hello's waiter, calls by id with their client-side deadlines,
/// pings, GoAway and close. Whoever waits is a plain string here.
@Suite("Client connection state machine")
struct ClientConnectionStateMachineTests {
    typealias Machine = ClientConnectionStateMachine<String, String, String>

    private let t0 = NIODeadline.uptimeNanoseconds(7_000_000_000)

    private func frame(_ kind: RpcV1.ServerFrame.Kind) -> RpcV1.ServerFrame {
        RpcV1.ServerFrame(kind: kind)
    }

    private func reply(_ callID: UInt64, message: String? = nil, status: RpcV1.Status?) -> RpcV1.ServerFrame {
        var reply = RpcV1.Reply(callId: callID, status: status)
        if let message {
            reply.message = RpcV1.Payload(data: Array(message.utf8))
        }
        return self.frame(.reply(reply))
    }

    private func goAway(_ status: RpcV1.Status, lastCallID: UInt64) -> RpcV1.ServerFrame {
        self.frame(.goAway(RpcV1.GoAway(status: status, lastCallId: lastCallID)))
    }

    /// Sends a call and returns its id.
    private func start(_ machine: inout Machine, _ receiver: String, timeout: TimeAmount? = nil) -> UInt64? {
        guard case .send(let callID, _) = machine.startCall(receiver, timeout: timeout, at: self.t0) else {
            Issue.record("expected the call to be sent")
            return nil
        }
        return callID
    }

    private func welcomed() -> Machine {
        var machine = Machine()
        guard case .send = machine.helloSent("hello") else {
            Issue.record("expected the Hello to go")
            return machine
        }
        guard case .welcome("hello", _) = machine.frameReceived(self.frame(.welcome(RpcV1.Welcome()))) else {
            Issue.record("expected the Welcome to reach the Hello's waiter")
            return machine
        }
        return machine
    }

    @Test("the Welcome answers the Hello's waiter once")
    func welcome() {
        var machine = Machine()
        #expect(machine.isAwaitingWelcome == false)
        _ = machine.helloSent("hello")
        #expect(machine.isAwaitingWelcome)
        guard case .welcome(let greeting, _) = machine.frameReceived(self.frame(.welcome(RpcV1.Welcome()))) else {
            Issue.record("expected the Welcome")
            return
        }
        #expect(greeting == "hello")
        #expect(machine.isAwaitingWelcome == false)
        guard case .none = machine.frameReceived(self.frame(.welcome(RpcV1.Welcome()))) else {
            Issue.record("a second Welcome has no one to go to")
            return
        }
    }

    @Test("calls are numbered upwards; messages and the final status reach the call by id; unknown ids are ignored")
    func replies() {
        var machine = self.welcomed()
        guard let first = self.start(&machine, "a"), let second = self.start(&machine, "b") else { return }
        #expect(first == 1)
        #expect(second == 2)
        let streamed = machine.frameReceived(self.reply(2, message: "m", status: nil))
        guard case .reply(2, "b", let message, nil) = streamed else {
            Issue.record("expected a stream message for call 2")
            return
        }
        #expect(message == Array("m".utf8))
        #expect(machine.inFlightCount == 2)
        guard case .reply(2, "b", nil, let final?) = machine.frameReceived(self.reply(2, status: .ok)) else {
            Issue.record("expected call 2's end")
            return
        }
        #expect(final.code == .ok)
        #expect(machine.inFlightCount == 1)
        guard case .none = machine.frameReceived(self.reply(2, status: .ok)),
            case .none = machine.frameReceived(self.reply(9, status: .ok))
        else {
            Issue.record("replies to calls not in flight are ignored")
            return
        }
    }

    @Test("a call's client-side deadline is its timeout plus the grace; only then does it fail, once")
    func deadline() {
        var machine = self.welcomed()
        let started = machine.startCall("a", timeout: .milliseconds(100), at: self.t0)
        guard case .send(let callID, let deadline) = started else {
            Issue.record("expected the call to be sent")
            return
        }
        #expect(deadline == self.t0 + .milliseconds(100) + .seconds(2))
        #expect(machine.deadline(of: callID) == deadline)
        #expect(machine.deadlinePassed(callID, at: self.t0 + .milliseconds(2_099)) == nil)
        #expect(machine.deadlinePassed(callID, at: self.t0 + .milliseconds(2_100)) == "a")
        #expect(machine.deadlinePassed(callID, at: self.t0 + .milliseconds(2_200)) == nil)
        guard case .none = machine.frameReceived(self.reply(callID, status: .ok)) else {
            Issue.record("a late answer is ignored")
            return
        }
        // Without a timeout there is no deadline.
        guard case .send(_, nil) = machine.startCall("b", timeout: nil, at: self.t0) else {
            Issue.record("expected no deadline")
            return
        }
    }

    @Test("cancelling ends a call once")
    func cancel() {
        var machine = self.welcomed()
        guard let callID = self.start(&machine, "a") else { return }
        #expect(machine.cancelRequested(callID) == "a")
        #expect(machine.cancelRequested(callID) == nil)
        #expect(machine.inFlightCount == 0)
    }

    @Test("a draining GoAway keeps the calls already sent and refuses new ones, which were never sent")
    func drainingGoAway() {
        var machine = self.welcomed()
        guard let callID = self.start(&machine, "a") else { return }
        let status = RpcV1.Status(code: .unavailable, message: "draining", reason: GoAwayReason.draining.rawValue)
        guard case .none = machine.frameReceived(self.goAway(status, lastCallID: callID)) else {
            Issue.record("a drain fails nothing")
            return
        }
        #expect(machine.state == .goingAway)
        #expect(machine.isUsable == false)
        #expect(machine.inFlightCount == 1)
        guard case .refuse(2, "b", let refusal) = machine.startCall("b", timeout: nil, at: self.t0) else {
            Issue.record("expected the new call to be refused")
            return
        }
        #expect(refusal.code == .unavailable)
        guard case .reply(callID, "a", nil, _?) = machine.frameReceived(self.reply(callID, status: .ok)) else {
            Issue.record("the call sent before the drain is still answered")
            return
        }
    }

    @Test("any other GoAway ends every call: those above its last call id were never started")
    func failingGoAway() {
        var machine = self.welcomed()
        guard let one = self.start(&machine, "a"), let two = self.start(&machine, "b"),
            let three = self.start(&machine, "c")
        else { return }
        machine.pingSent(nonce: 5, "ping")
        let status = RpcV1.Status(code: .unavailable, message: "idle", reason: GoAwayReason.idleTimeout.rawValue)
        guard case .fail(let failure) = machine.frameReceived(self.goAway(status, lastCallID: one)) else {
            Issue.record("expected a failure")
            return
        }
        #expect(failure.notStarted == [two: "b", three: "c"])
        #expect(failure.notStartedStatus?.code == .unavailable)
        #expect(failure.calls == [one: "a"])
        #expect(failure.pings == ["ping"])
        #expect(failure.error.code == .unavailable)
        #expect(machine.inFlightCount == 0)
        #expect(machine.isUsable == false)
    }

    @Test("a GoAway before the Welcome fails the Hello even when it is a drain")
    func goAwayBeforeWelcome() {
        var machine = Machine()
        _ = machine.helloSent("hello")
        let status = RpcV1.Status(code: .unavailable, message: "draining", reason: GoAwayReason.draining.rawValue)
        guard case .fail(let failure) = machine.frameReceived(self.goAway(status, lastCallID: 0)) else {
            Issue.record("expected a failure")
            return
        }
        #expect(failure.greeting == "hello")
        #expect(machine.isAwaitingWelcome == false)
    }

    @Test("the channel's close fails everything; a Hello after it gets the first failure")
    func closed() {
        var machine = Machine()
        let first = machine.undecodableFrame(RPCError.internalError("garbage"))
        #expect(first.calls.isEmpty)
        #expect(machine.isUsable)
        let failure = machine.connectionClosed(RPCError.unavailable("closed"))
        #expect(failure.error.code == .unavailable)
        #expect(machine.state == .closed)
        guard case .fail("late", let error) = machine.helloSent("late") else {
            Issue.record("expected the Hello to fail")
            return
        }
        #expect(error.code == .internal)
        guard case .refuse(1, "a", _) = machine.startCall("a", timeout: nil, at: self.t0) else {
            Issue.record("expected the call to be refused")
            return
        }
    }

    @Test("a close fails the Hello's waiter, the calls and the pings in flight")
    func closeFailsAll() {
        var machine = Machine()
        _ = machine.helloSent("hello")
        guard let callID = self.start(&machine, "a") else { return }
        machine.pingSent(nonce: 1, "ping")
        let failure = machine.connectionClosed(RPCError.unavailable("closed"))
        #expect(failure.greeting == "hello")
        #expect(failure.calls == [callID: "a"])
        #expect(failure.pings == ["ping"])
        #expect(failure.notStarted.isEmpty)
        #expect(machine.inFlightCount == 0)
        // A Pong after the close has no one to go to.
        guard case .none = machine.frameReceived(self.frame(.pong(RpcV1.Pong(nonce: 1)))) else {
            Issue.record("expected nothing")
            return
        }
    }

    @Test("a Pong answers the ping with its nonce")
    func pong() {
        var machine = self.welcomed()
        machine.pingSent(nonce: 42, "ping")
        guard case .pong("ping") = machine.frameReceived(self.frame(.pong(RpcV1.Pong(nonce: 42)))) else {
            Issue.record("expected the Pong")
            return
        }
    }
}
