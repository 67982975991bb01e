import ArgumentParser
import Atomics
import Foundation
import NIOConcurrencyHelpers
import VPPClient
import VPPProto
import VPPWire
import VPPClock

/// `vpp-load abuse`: what one hostile peer's attack costs the server and the clients beside it (issue 16).
struct AbuseCommand: LoadSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "abuse",
        abstract:
            "Attack the server with hostile frames from many connections while a steady client calls it; report both.",
        discussion: """
            Runs --connections attackers, each on a thread of its own with a blocking socket, repeating --attack for \
            --duration, while one steady client calls /vpp.v1.SystemService/Ping every --interval on its own \
            connection. Reports how the server answered the attacks, the steady client's failures and latency \
            percentiles, and with --server-pid the server's resident memory (sampled every 20 ms, and its VmHWM \
            after resetting it through /proc/PID/clear_refs when this user may).
            Attacks: metadata (after a Hello, a Call in one largest-size frame holding ~2.1 million empty metadata \
            entries), metadata-no-key (the same with no Hello), elements (after a Hello with the key of \
            --attack-key or, without it, a tenant this command creates: UpsertUsers with ~2.1 million empty users), \
            partial-frame (no Hello: a 4 MiB length prefix, 4 MiB - 1 bytes, then nothing), partial-frame-key (the \
            same after a Hello), close-storm (--storm-connections authenticated connections closed at once; the \
            report gives the steady client's slowest call from then on), none (the steady client alone).
            The key (VPP_API_KEY) must be an operator key unless --attack-key is given: the steady client uses it, \
            and elements creates its tenant with it.
            Example: VPP_API_KEY=… vpp-load abuse --attack elements --connections 16 --duration 20s --server-pid $(pidof vppd)
            """
    )

    @OptionGroup var target: TargetOptions

    @Option(help: "The attack: \(Attack.allCases.map(\.rawValue).joined(separator: ", ")).")
    var attack: Attack = .none

    @Option(help: "Attacking connections, each on its own thread.")
    var connections: Int = 16

    @Option(
        help:
            "How long the attack lasts, e.g. 20s (for close-storm: how long the steady client goes on after the close)."
    )
    var duration: String = "20s"

    @Option(help: "The steady client's pause between calls, e.g. 10ms.")
    var interval: String = "10ms"

    @Option(
        name: .customLong("max-frame-bytes"),
        help: "The server's --max-frame-bytes: the size of the attack frames."
    )
    var maxFrameBytes: Int = 4 * 1024 * 1024

    @Option(name: .customLong("storm-connections"), help: "close-storm: the connections opened, then closed at once.")
    var stormConnections: Int = 10_000

    @Option(
        name: .customLong("attack-key"),
        help: "The key the attackers' Hello carries (default: a new tenant's for elements, else VPP_API_KEY)."
    )
    var attackKey: String?

    @Option(name: .customLong("server-pid"), help: "The server's process id, to read its memory from /proc.")
    var serverPID: Int?

    mutating func validate() throws {
        guard (1...1000).contains(self.connections) else { throw ValidationError("--connections must be 1 to 1000.") }
        guard (1...100_000).contains(self.stormConnections) else {
            throw ValidationError("--storm-connections must be 1 to 100000.")
        }
        guard (1024...(256 << 20)).contains(self.maxFrameBytes) else {
            throw ValidationError("--max-frame-bytes must be 1 KiB to 256 MiB.")
        }
        guard let duration = LoadDuration.parse(self.duration), duration > .zero,
            LoadDuration.parse(self.interval) != nil
        else {
            throw ValidationError("--duration and --interval take durations such as 20s and 10ms.")
        }
        guard self.target.host.split(separator: ".").count == 4 else {
            throw ValidationError(
                "abuse connects its attackers over IPv4: give --host as a dotted address such as 127.0.0.1."
            )
        }
    }

    func execute() async throws {
        let duration = LoadDuration.parse(self.duration) ?? .seconds(20)
        let key = self.target.resolvedAPIKey ?? ""
        let attackKey = try await self.resolveAttackKey(default: key)
        let sampler = self.serverPID.map(MemorySampler.init(pid:))
        let before = self.serverPID.flatMap(ProcessMemory.init(pid:))
        let peakReset = sampler?.resetPeak() ?? false

        let stop = ManagedAtomic(false)
        let mark = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
        let tally = AttackTally()
        let steady = SteadyClient(
            configuration: self.target.clientConfiguration(),
            interval: LoadDuration.parse(self.interval) ?? .milliseconds(10),
            timeout: self.target.callTimeout
        )
        // The steady client connects before the attack starts: its connection is the one a real client already has.
        let steadyTask = Task { await steady.run(stop: stop, mark: mark) }
        let samplerTask = Task { await sampler?.run(stop: stop) }
        try? await Task.sleep(for: .milliseconds(500))

        var storm: StormFigures?
        let started = ContinuousClock.now
        if self.attack == .closeStorm {
            storm = try await self.closeStorm(key: attackKey, mark: mark)
            try? await Task.sleep(for: duration)
        } else {
            let attackStop = ManagedAtomic(false)
            let frame = AttackFrames.bytes(of: self.attack, maxFrameBytes: self.maxFrameBytes)
            let threads = (0..<(self.attack == .none ? 0 : self.connections)).map { _ in
                let attacker = Attacker(
                    attack: self.attack,
                    host: self.target.host,
                    port: self.target.port,
                    apiKey: attackKey,
                    frame: frame,
                    tally: tally,
                    stop: attackStop
                )
                let done = DispatchSemaphore(value: 0)
                let thread = Thread {
                    attacker.run()
                    done.signal()
                }
                thread.stackSize = 1 << 20
                thread.start()
                return done
            }
            try? await Task.sleep(for: duration)
            attackStop.store(true, ordering: .relaxed)
            for done in threads {
                await withCheckedContinuation { continuation in
                    DispatchQueue.global().async {
                        done.wait()
                        continuation.resume()
                    }
                }
            }
        }
        let attackSeconds = (ContinuousClock.now - started).inSeconds
        stop.store(true, ordering: .relaxed)
        let (recorder, slowestAfterMark) = await steadyTask.value
        await samplerTask.value
        let after = self.serverPID.flatMap(ProcessMemory.init(pid:))

        let report = AbuseReport(
            attack: self.attack.rawValue,
            connections: self.attack == .closeStorm
                ? self.stormConnections : (self.attack == .none ? 0 : self.connections),
            attackSeconds: attackSeconds,
            attempts: tally.attempts.load(ordering: .relaxed),
            outcomes: tally.outcomes,
            serverRSSBeforeKB: before?.residentKB,
            serverRSSPeakSampledKB: sampler?.peakKB,
            serverHWMKB: peakReset ? after?.peakResidentKB : nil,
            steadyCalls: recorder.callCount,
            steadyFailed: recorder.errorCount,
            steadyErrors: recorder.errors,
            steadyErrorSamples: recorder.errorSamples,
            steadyP50Microseconds: recorder.microseconds(atPercentile: 50),
            steadyP99Microseconds: recorder.microseconds(atPercentile: 99),
            steadyMaxMicroseconds: recorder.histogram.totalCount == 0 ? 0 : recorder.histogram.max,
            stormOpenSeconds: storm?.openSeconds,
            stormCloseSeconds: storm?.closeSeconds,
            stormSlowestSteadyCallMicroseconds: storm == nil ? nil : LatencyRecorder.microseconds(slowestAfterMark)
        )
        print(self.target.json ? try report.json() : report.human())
        if report.steadyFailed > 0 { throw ExitCode(1) }
    }

    /// The attackers' key: --attack-key, or for `elements` the initial key of a tenant created now, else VPP_API_KEY.
    private func resolveAttackKey(default key: String) async throws -> String {
        if let attackKey = self.attackKey { return attackKey }
        guard self.attack == .elements else { return key }
        let client = VPPClient(self.target.clientConfiguration())
        defer { Task { await client.close() } }
        var request = VppV1.CreateTenantRequest()
        request.displayName = "vpp-load abuse \(UUID().uuidString.prefix(8))"
        request.initialKeyName = "vpp-load-abuse"
        do {
            let created = try await client.call(VppV1.OperatorService.CreateTenant.self, request)
            guard let secret = created.initialKey?.secret, !secret.isEmpty else {
                throw LoadError("CreateTenant answered without an initial key.")
            }
            return secret
        } catch let error as RPCError {
            throw LoadError(
                "Could not create the attack's tenant (the key must be an operator key, or give --attack-key): \(error)"
            )
        }
    }

    struct StormFigures {
        var openSeconds: Double
        var closeSeconds: Double
    }

    /// Opens `stormConnections` authenticated connections (each its Hello answered), then closes them all in one
    /// loop; `mark` is set just before the first close.
    private func closeStorm(key: String, mark: NIOLockedValueBox<ContinuousClock.Instant?>) async throws -> StormFigures
    {
        let limit = raiseDescriptorLimit()
        guard limit > self.stormConnections + 64 else {
            throw LoadError(
                "The descriptor limit here is \(limit): raise `ulimit -n` above \(self.stormConnections + 64)."
            )
        }
        let host = self.target.host
        let port = self.target.port
        let count = self.stormConnections
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                do {
                    let opened = ContinuousClock.now
                    var sockets: [BlockingSocket] = []
                    sockets.reserveCapacity(count)
                    let hello = AttackFrames.hello(apiKey: key)
                    for _ in 0..<count {
                        let socket = try BlockingSocket(host: host, port: port, receiveTimeoutSeconds: 30)
                        try socket.send(hello)
                        let welcome = socket.readFrame()
                        guard AttackTally.describe(welcome) == "Welcome" else {
                            throw LoadError(
                                "connection \(sockets.count + 1) was answered \(AttackTally.describe(welcome))"
                            )
                        }
                        sockets.append(socket)
                    }
                    let openSeconds = (ContinuousClock.now - opened).inSeconds
                    Thread.sleep(forTimeInterval: 1)
                    let closing = ContinuousClock.now
                    mark.withLockedValue { $0 = closing }
                    for socket in sockets { socket.close() }
                    continuation.resume(
                        returning: StormFigures(
                            openSeconds: openSeconds,
                            closeSeconds: (ContinuousClock.now - closing).inSeconds
                        )
                    )
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }
}

struct AbuseReport: Codable, Equatable {
    var attack: String
    var connections: Int
    var attackSeconds: Double
    var attempts: Int
    var outcomes: [String: Int]
    var serverRSSBeforeKB: Int?
    var serverRSSPeakSampledKB: Int?
    var serverHWMKB: Int?
    var steadyCalls: Int
    var steadyFailed: Int
    var steadyErrors: [String: Int]
    var steadyErrorSamples: [String: String]
    var steadyP50Microseconds: UInt64
    var steadyP99Microseconds: UInt64
    var steadyMaxMicroseconds: UInt64
    var stormOpenSeconds: Double?
    var stormCloseSeconds: Double?
    var stormSlowestSteadyCallMicroseconds: UInt64?

    enum CodingKeys: String, CodingKey {
        case attack, connections, attempts, outcomes
        case attackSeconds = "attack_seconds"
        case serverRSSBeforeKB = "server_rss_before_kb"
        case serverRSSPeakSampledKB = "server_rss_peak_sampled_kb"
        case serverHWMKB = "server_hwm_kb"
        case steadyCalls = "steady_calls"
        case steadyFailed = "steady_failed"
        case steadyErrors = "steady_errors"
        case steadyErrorSamples = "steady_error_samples"
        case steadyP50Microseconds = "steady_p50_us"
        case steadyP99Microseconds = "steady_p99_us"
        case steadyMaxMicroseconds = "steady_max_us"
        case stormOpenSeconds = "storm_open_seconds"
        case stormCloseSeconds = "storm_close_seconds"
        case stormSlowestSteadyCallMicroseconds = "storm_slowest_steady_call_us"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.attack, forKey: .attack)
        try container.encode(self.connections, forKey: .connections)
        try container.encode(self.attackSeconds, forKey: .attackSeconds)
        try container.encode(self.attempts, forKey: .attempts)
        try container.encode(self.outcomes, forKey: .outcomes)
        try container.encode(self.serverRSSBeforeKB, forKey: .serverRSSBeforeKB)
        try container.encode(self.serverRSSPeakSampledKB, forKey: .serverRSSPeakSampledKB)
        try container.encode(self.serverHWMKB, forKey: .serverHWMKB)
        try container.encode(self.steadyCalls, forKey: .steadyCalls)
        try container.encode(self.steadyFailed, forKey: .steadyFailed)
        try container.encode(self.steadyErrors, forKey: .steadyErrors)
        try container.encode(self.steadyErrorSamples, forKey: .steadyErrorSamples)
        try container.encode(self.steadyP50Microseconds, forKey: .steadyP50Microseconds)
        try container.encode(self.steadyP99Microseconds, forKey: .steadyP99Microseconds)
        try container.encode(self.steadyMaxMicroseconds, forKey: .steadyMaxMicroseconds)
        try container.encode(self.stormOpenSeconds, forKey: .stormOpenSeconds)
        try container.encode(self.stormCloseSeconds, forKey: .stormCloseSeconds)
        try container.encode(self.stormSlowestSteadyCallMicroseconds, forKey: .stormSlowestSteadyCallMicroseconds)
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    func human() -> String {
        func ms(_ micros: UInt64) -> String { String(format: "%.1f ms", Double(micros) / 1000) }
        func mb(_ kb: Int?) -> String { kb.map { String(format: "%.0f MB", Double($0) * 1024 / 1e6) } ?? "-" }
        var lines = [
            "vpp-load abuse: \(self.attack) from \(self.connections) connections for "
                + String(format: "%.1f", self.attackSeconds) + " s, \(self.attempts) attempts"
        ]
        for (outcome, count) in self.outcomes.sorted(by: { $0.value > $1.value }) {
            lines.append("  server answered \(count)×: \(outcome)")
        }
        if let open = self.stormOpenSeconds, let close = self.stormCloseSeconds {
            lines.append(String(format: "  storm: opened in %.2f s, closed in %.3f s", open, close))
        }
        lines.append(
            "server resident memory: before \(mb(self.serverRSSBeforeKB)), peak sampled \(mb(self.serverRSSPeakSampledKB)), "
                + "VmHWM \(mb(self.serverHWMKB))"
        )
        lines.append(
            "steady client: \(self.steadyCalls) calls, \(self.steadyFailed) failed, p50 \(ms(self.steadyP50Microseconds)), "
                + "p99 \(ms(self.steadyP99Microseconds)), max \(ms(self.steadyMaxMicroseconds))"
        )
        if let slowest = self.stormSlowestSteadyCallMicroseconds {
            lines.append("steady client's slowest call from the close on: \(ms(slowest))")
        }
        for (status, sample) in self.steadyErrorSamples.sorted(by: { $0.key < $1.key }) {
            lines.append("  \(status) ×\(self.steadyErrors[status] ?? 0): \(sample)")
        }
        return lines.joined(separator: "\n")
    }
}
