import ArgumentParser
import Atomics
import Foundation
import NIOConcurrencyHelpers
import VPPClient
import VPPProto
import VPPWire

/// The attacks of issue 16, as `vpp-load abuse` sends them.
enum Attack: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// No attack: the steady client alone (the baseline for the others).
    case none
    /// After a Hello: one Call frame of the largest size the server accepts holding ~2.1 million empty metadata
    /// entries; again on a new connection each time the server closes one.
    case metadata
    /// The same frame with no Hello first (the issue's attack 2, as found).
    case metadataNoKey = "metadata-no-key"
    /// After a Hello with a tenant key: UpsertUsers with ~2.1 million empty users in one frame, again and again on
    /// the same connection.
    case elements
    /// No Hello: a 4 MiB length prefix, 4 MiB − 1 bytes, then nothing (the issue's attack 3).
    case partialFrame = "partial-frame"
    /// The same after a Hello (the frame is then within the authenticated limit; the server's frame budget holds).
    case partialFrameKey = "partial-frame-key"
    /// `--storm-connections` authenticated connections opened, then closed all at once (issue 16, point 7).
    case closeStorm = "close-storm"
}

/// What the attackers saw: how the server answered each attempt.
final class AttackTally: Sendable {
    private let counts = NIOLockedValueBox<[String: Int]>([:])
    let attempts = ManagedAtomic<Int>(0)

    func record(_ outcome: String) {
        self.counts.withLockedValue { $0[outcome, default: 0] += 1 }
    }

    var outcomes: [String: Int] { self.counts.withLockedValue { $0 } }

    /// A name for what the server sent: "GoAway RESOURCE_EXHAUSTED FRAME_TOO_LARGE", "Reply INVALID_ARGUMENT …".
    static func describe(_ body: [UInt8]?) -> String {
        guard let body else { return "closed" }
        guard let frame = try? body.withUnsafeBytes({ try RpcV1.ServerFrame(serializedBytes: $0) }) else {
            return "undecodable frame"
        }
        switch frame.kind {
        case .welcome: return "Welcome"
        case .pong: return "Pong"
        case .goAway(let goAway):
            let error = RPCError(status: goAway.status ?? RpcV1.Status())
            return "GoAway \(error.code.name) \(error.reason ?? "")".trimmingCharacters(in: .whitespaces)
        case .reply(let reply):
            let error = RPCError(status: reply.status ?? RpcV1.Status())
            return "Reply \(error.code.name) \(error.reason ?? "")".trimmingCharacters(in: .whitespaces)
        case nil: return "empty frame"
        }
    }
}

/// One attacker: a thread of its own with blocking sockets, repeating its attack until told to stop.
struct Attacker: Sendable {
    var attack: Attack
    var host: String
    var port: Int
    var apiKey: String
    /// What the attack sends each time (`AttackFrames.bytes(of:maxFrameBytes:)`), shared by every attacker.
    var frame: [UInt8]
    var tally: AttackTally
    var stop: ManagedAtomic<Bool>

    func run() {
        var connection: BlockingSocket?
        while !self.stop.load(ordering: .relaxed) {
            do {
                switch self.attack {
                case .none, .closeStorm:
                    return
                case .metadata, .metadataNoKey:
                    let socket = try self.open(authenticate: self.attack == .metadata)
                    self.tally.attempts.wrappingIncrement(ordering: .relaxed)
                    self.sendCountingRefusal(self.frame, on: socket)
                    self.tally.record(AttackTally.describe(socket.readFrame()))
                    socket.close()
                case .elements:
                    let socket = try connection ?? self.open(authenticate: true)
                    connection = socket
                    self.tally.attempts.wrappingIncrement(ordering: .relaxed)
                    self.sendCountingRefusal(self.frame, on: socket)
                    let answer = socket.readFrame()
                    self.tally.record(AttackTally.describe(answer))
                    if answer == nil { connection = nil }
                case .partialFrame, .partialFrameKey:
                    let socket = try self.open(authenticate: self.attack == .partialFrameKey)
                    self.tally.attempts.wrappingIncrement(ordering: .relaxed)
                    self.sendCountingRefusal(self.frame, on: socket)
                    // Hold the connection with its frame one byte short until the server gives up on it or the run ends.
                    self.tally.record(self.waitForServer(socket))
                    socket.close()
                }
            } catch {
                self.tally.record("attacker error: \(error)")
                connection = nil
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }

    /// A new connection, authenticated when asked. Answers are waited for up to 30 s (a loaded server is slow, not
    /// closed); the partial-frame attacks wait in 1 s steps, so that they see the run end.
    private func open(authenticate: Bool) throws -> BlockingSocket {
        let socket = try BlockingSocket(host: self.host, port: self.port, receiveTimeoutSeconds: 30)
        if authenticate {
            try socket.send(AttackFrames.hello(apiKey: self.apiKey))
            let welcome = socket.readFrame()
            guard AttackTally.describe(welcome) == "Welcome" else {
                throw LoadError("the server answered the Hello with \(AttackTally.describe(welcome))")
            }
        }
        if self.attack == .partialFrame || self.attack == .partialFrameKey { socket.setReceiveTimeout(seconds: 1) }
        return socket
    }

    /// Sends; a server that closed the connection before the last byte is counted, not thrown.
    private func sendCountingRefusal(_ bytes: [UInt8], on socket: BlockingSocket) {
        do {
            try socket.send(bytes)
        } catch {
            self.tally.record("refused while sending (\(error))")
        }
    }

    /// Waits (in 1 s receive timeouts) until the server sends something or closes, or the run ends.
    private func waitForServer(_ socket: BlockingSocket) -> String {
        while !self.stop.load(ordering: .relaxed) {
            switch socket.readFrameOrTimeout() {
            case .frame(let body): return AttackTally.describe(body)
            case .closed: return "closed"
            case .timedOut: continue
            }
        }
        return "held until the run ended"
    }
}

/// The steady client: one call at a time on one connection, `interval` apart, every latency recorded.
struct SteadyClient: Sendable {
    var configuration: ClientConfiguration
    var interval: Duration
    var timeout: Duration

    /// Runs until `stop`; returns what it saw, and the slowest call that started at or after `mark` (if set).
    func run(stop: ManagedAtomic<Bool>, mark: NIOLockedValueBox<ContinuousClock.Instant?>) async -> (
        LatencyRecorder, Duration
    ) {
        let client = VPPClient(self.configuration)
        var recorder = LatencyRecorder()
        var slowestAfterMark = Duration.zero
        var request = VppV1.PingRequest()
        request.payload = Array("steady".utf8)
        while !stop.load(ordering: .relaxed) {
            let started = ContinuousClock.now
            do {
                _ = try await client.call(VppV1.SystemService.Ping.self, request, timeout: self.timeout)
                let latency = ContinuousClock.now - started
                recorder.recordSuccess(latency)
                if let mark = mark.withLockedValue({ $0 }), started >= mark - latency {
                    slowestAfterMark = max(slowestAfterMark, latency)
                }
            } catch let error as RPCError {
                recorder.recordFailure(status: error.code.name, message: error.message)
            } catch {
                recorder.recordFailure(status: "CLIENT_ERROR", message: "\(error)")
            }
            try? await Task.sleep(for: self.interval)
        }
        await client.close()
        return (recorder, slowestAfterMark)
    }
}

/// Samples a process's VmRSS every `interval` and keeps the largest.
final class MemorySampler: Sendable {
    let pid: Int
    private let peak = ManagedAtomic<Int>(0)

    init(pid: Int) { self.pid = pid }

    var peakKB: Int { self.peak.load(ordering: .relaxed) }

    func run(stop: ManagedAtomic<Bool>, interval: Duration = .milliseconds(20)) async {
        while !stop.load(ordering: .relaxed) {
            if let memory = ProcessMemory(pid: self.pid) {
                var current = self.peak.load(ordering: .relaxed)
                while memory.residentKB > current {
                    let (exchanged, original) = self.peak.compareExchange(
                        expected: current,
                        desired: memory.residentKB,
                        ordering: .relaxed
                    )
                    if exchanged { break }
                    current = original
                }
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Resets the process's peak resident size (VmHWM) by writing 5 to /proc/PID/clear_refs (its owner or root
    /// may). True when the kernel took it.
    func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/\(self.pid)/clear_refs") else { return false }
        defer { try? handle.close() }
        do {
            try handle.write(contentsOf: Data("5".utf8))
            return true
        } catch {
            return false
        }
    }
}

extension BlockingSocket {
    enum ReadResult {
        case frame([UInt8])
        case closed
        case timedOut
    }

    /// One frame, or what stopped it: the server closing, or the receive timeout passing with nothing read.
    func readFrameOrTimeout() -> ReadResult {
        var byte: UInt8 = 0
        let peeked = recv(self.descriptor, &byte, 1, Int32(MSG_PEEK))
        if peeked < 0, errno == EAGAIN || errno == EWOULDBLOCK { return .timedOut }
        if peeked <= 0 { return .closed }
        return self.readFrame().map { .frame($0) } ?? .closed
    }
}
