import NIOCore
import Testing
import VPPProto
import VPPWire

@Suite("Server connection state machine")
struct ServerConnectionStateMachineTests {
    typealias Machine = ServerConnectionStateMachine<String>

    /// The time these tests pass in: the rules here do not depend on it (ServerConnectionTimeTests do).
    private let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    private func hello(_ key: String = "key", version: UInt32 = 1) -> RpcV1.ClientFrame {
        RpcV1.ClientFrame(kind: .hello(RpcV1.Hello(apiKey: key, protocolVersion: version)))
    }

    private func call(_ id: UInt64, _ method: String = "/vpp.v1.SystemService/Ping") -> RpcV1.ClientFrame {
        RpcV1.ClientFrame(kind: .call(RpcV1.Call(callId: id, method: method)))
    }

    private func authenticated(maxCalls: Int = 4) -> Machine {
        var machine = Machine(maxCallsInFlight: maxCalls)
        _ = machine.frameReceived(self.hello(), at: self.t0)
        let succeeded = machine.authenticationSucceeded("principal", at: self.t0)
        #expect(succeeded)
        return machine
    }

    private func code(of action: Machine.FrameAction) -> RpcV1.StatusCode? {
        switch action {
        case .closeWithError(let status): return status.code
        case .send(let frame):
            if case .reply(let reply) = frame.kind { return reply.status?.code }
            return nil
        default: return nil
        }
    }

    private func isClose(_ action: Machine.FrameAction) -> Bool {
        if case .closeWithError = action { return true }
        return false
    }

    @Test("the first frame must be a Hello; anything else closes with UNAUTHENTICATED")
    func firstFrameMustBeHello() {
        var machine = Machine(maxCallsInFlight: 4)
        let action = machine.frameReceived(self.call(1), at: self.t0)
        #expect(self.isClose(action))
        #expect(self.code(of: action) == .unauthenticated)
        #expect(machine.state == .closed)
        #expect(machine.frameReceived(self.hello(), at: self.t0) == .none)
    }

    @Test("a Hello starts authentication; a failure closes with the authenticator's status")
    func helloThenAuthenticationFailure() {
        var machine = Machine(maxCallsInFlight: 4)
        #expect(machine.frameReceived(self.hello("secret"), at: self.t0) == .authenticate(self.helloValue("secret")))
        #expect(machine.state == .authenticating)
        let status = RpcV1.Status(code: .unauthenticated, message: "unknown key")
        // The authenticator's status goes out as it is, with the machine-readable reason added.
        let expected = RpcV1.Status(code: .unauthenticated, message: "unknown key", reason: "AUTHENTICATION_FAILED")
        #expect(machine.authenticationFailed(status) == .closeWithError(expected))
        #expect(machine.state == .closed)
    }

    private func helloValue(_ key: String) -> RpcV1.Hello {
        guard case .hello(let hello) = self.hello(key).kind else { fatalError() }
        return hello
    }

    @Test("frames sent before the Welcome close the connection")
    func framesDuringAuthentication() {
        var machine = Machine(maxCallsInFlight: 4)
        _ = machine.frameReceived(self.hello(), at: self.t0)
        let action = machine.frameReceived(self.call(1), at: self.t0)
        #expect(self.code(of: action) == .failedPrecondition)
        #expect(machine.state == .closed)
        #expect(machine.authenticationSucceeded("principal", at: self.t0) == false)
    }

    @Test("an unsupported protocol version is refused")
    func unsupportedVersion() {
        var machine = Machine(maxCallsInFlight: 4)
        #expect(self.code(of: machine.frameReceived(self.hello(version: 9), at: self.t0)) == .failedPrecondition)
    }

    @Test("calls start after authentication, and each is answered once")
    func callsAnsweredOnce() {
        var machine = self.authenticated()
        #expect(machine.frameReceived(self.call(1), at: self.t0) == .startCall(self.callValue(1)))
        #expect(machine.frameReceived(self.call(2), at: self.t0) == .startCall(self.callValue(2)))
        #expect(machine.inFlightCount == 2)
        // Out of order: 2 ends first.
        #expect(machine.callFinished(2, status: .ok).action == .sendReply)
        #expect(machine.callFinished(1, status: .ok).action == .sendReply)
        #expect(machine.callFinished(1, status: .ok).action == .drop)
        #expect(machine.inFlightCount == 0)
    }

    private func callValue(_ id: UInt64) -> RpcV1.Call {
        guard case .call(let call) = self.call(id).kind else { fatalError() }
        return call
    }

    @Test("more calls than the in-flight limit answer RESOURCE_EXHAUSTED for that call only")
    func inFlightLimit() {
        var machine = self.authenticated(maxCalls: 2)
        _ = machine.frameReceived(self.call(1), at: self.t0)
        _ = machine.frameReceived(self.call(2), at: self.t0)
        let refused = machine.frameReceived(self.call(3), at: self.t0)
        #expect(self.code(of: refused) == .resourceExhausted)
        #expect(machine.state == .active)
        #expect(machine.callFinished(3, status: .ok).action == .drop)
        _ = machine.callFinished(1, status: .ok)
        #expect(machine.frameReceived(self.call(3), at: self.t0) == .startCall(self.callValue(3)))
    }

    @Test("call id 0 and a call id already in flight are protocol errors")
    func badCallIDs() {
        var machine = self.authenticated()
        #expect(self.code(of: machine.frameReceived(self.call(0), at: self.t0)) == .invalidArgument)
        var second = self.authenticated()
        _ = second.frameReceived(self.call(5), at: self.t0)
        let duplicate = second.frameReceived(self.call(5), at: self.t0)
        #expect(self.isClose(duplicate))
        #expect(self.code(of: duplicate) == .invalidArgument)
    }

    @Test("a call id may be reused once its call has ended")
    func callIDReuse() {
        var machine = self.authenticated()
        _ = machine.frameReceived(self.call(7), at: self.t0)
        _ = machine.callFinished(7, status: .ok)
        #expect(machine.frameReceived(self.call(7), at: self.t0) == .startCall(self.callValue(7)))
    }

    @Test("cancel of a call in flight asks to cancel it; of an unknown call does nothing")
    func cancel() {
        var machine = self.authenticated()
        _ = machine.frameReceived(self.call(1), at: self.t0)
        let frame = RpcV1.ClientFrame(kind: .cancel(RpcV1.Cancel(callId: 1)))
        #expect(machine.frameReceived(frame, at: self.t0) == .cancelCall(callID: 1))
        #expect(machine.callFinished(1, status: .ok).action == .sendReply)
        #expect(machine.frameReceived(frame, at: self.t0) == .none)
    }

    @Test("a Ping is answered with a Pong carrying the same nonce")
    func pingPong() {
        var machine = self.authenticated()
        let frame = RpcV1.ClientFrame(kind: .ping(RpcV1.Ping(nonce: 99)))
        guard case .send(let out) = machine.frameReceived(frame, at: self.t0), case .pong(let pong) = out.kind else {
            Issue.record("expected a pong")
            return
        }
        #expect(pong.nonce == 99)
    }

    @Test("an empty frame, a second Hello, and undecodable bytes close with INVALID_ARGUMENT")
    func protocolErrors() {
        var empty = self.authenticated()
        #expect(self.code(of: empty.frameReceived(RpcV1.ClientFrame(), at: self.t0)) == .invalidArgument)
        var twice = self.authenticated()
        #expect(self.code(of: twice.frameReceived(self.hello(), at: self.t0)) == .invalidArgument)
        var garbage = self.authenticated()
        #expect(self.code(of: garbage.undecodableFrame("bad")) == .invalidArgument)
        #expect(garbage.state == .closed)
    }

    @Test("draining: calls in flight finish, new calls are refused, the last answer closes the connection")
    func draining() {
        var machine = self.authenticated()
        _ = machine.frameReceived(self.call(1), at: self.t0)
        _ = machine.frameReceived(self.call(2), at: self.t0)
        guard case .sendGoAway(let goAway) = machine.beginDraining() else {
            Issue.record("expected a GoAway")
            return
        }
        #expect(goAway.status?.code == .unavailable)
        #expect(goAway.lastCallId == 2)
        #expect(self.code(of: machine.frameReceived(self.call(3), at: self.t0)) == .unavailable)
        #expect(machine.callFinished(1, status: .ok).action == .sendReply)
        #expect(machine.callFinished(2, status: .ok).action == .sendReplyAndClose)
        #expect(machine.state == .closed)
    }

    @Test("draining an idle connection closes it at once; an unauthenticated one closes silently")
    func drainingIdle() {
        var idle = self.authenticated()
        guard case .sendGoAwayAndClose = idle.beginDraining() else {
            Issue.record("expected GoAway and close")
            return
        }
        var fresh = Machine(maxCallsInFlight: 1)
        #expect(fresh.beginDraining() == .close)
    }

    @Test("timeouts: authentication timeout before the Welcome, idle timeout after it")
    func timeouts() {
        var waiting = Machine(maxCallsInFlight: 1)
        #expect(self.code(of: waiting.authenticationTimedOut()) == .unauthenticated)
        var active = self.authenticated()
        #expect(active.authenticationTimedOut() == .none)
        #expect(self.code(of: active.idleTimedOut()) == .unavailable)
    }

    @Test("a revoked principal closes the connection with UNAUTHENTICATED")
    func revoked() {
        var machine = self.authenticated()
        #expect(self.code(of: machine.principalRevoked("revoked")) == .unauthenticated)
    }

    @Test("closing the connection hands back every call in flight, to be cancelled")
    func connectionClosed() {
        var machine = self.authenticated()
        _ = machine.frameReceived(self.call(1), at: self.t0)
        _ = machine.frameReceived(self.call(2), at: self.t0)
        #expect(Set(machine.connectionClosed().calls) == [1, 2])
        #expect(machine.callFinished(1, status: .ok).action == .drop)
        #expect(machine.maySendStreamMessage(2) == false)
    }
}
