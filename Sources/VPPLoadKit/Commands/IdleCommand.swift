import ArgumentParser
import Foundation
import VPPClient
import VPPClock

/// `vpp-load idle`: what idle connections cost the server.
struct IdleCommand: LoadSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "idle",
        abstract: "Open many authenticated connections, hold them idle, and report the server's resident memory.",
        discussion: """
            Connects --connections clients (each sends its Hello and waits for the Welcome), holds them for --hold, \
            then closes them. With --server-pid, reads VmRSS and VmHWM from /proc/PID/status before connecting and \
            after --settle with every connection open. Each connection is a file descriptor here and in the server: \
            raise `ulimit -n` above the count. The server's --idle-timeout must be longer than --hold.
            Example: VPP_API_KEY=… vpp-load idle --connections 1000 --hold 10s --server-pid $(pidof vppd)
            """
    )

    @OptionGroup var target: TargetOptions

    @Option(help: "Connections to open.")
    var connections: Int = 1000

    @Option(help: "How long to hold them open, e.g. 10s.")
    var hold: String = "10s"

    @Option(help: "Wait this long after the last connection opened before reading the server's memory.")
    var settle: String = "2s"

    @Option(name: .customLong("server-pid"), help: "The server's process id, to read its memory from /proc.")
    var serverPID: Int?

    mutating func validate() throws {
        guard (1...100_000).contains(self.connections) else {
            throw ValidationError("--connections must be 1 to 100000.")
        }
        guard LoadDuration.parse(self.hold) != nil, LoadDuration.parse(self.settle) != nil else {
            throw ValidationError("--hold and --settle take durations such as 10s.")
        }
    }

    func execute() async throws {
        let before = self.serverPID.flatMap(ProcessMemory.init(pid:))
        let configuration = self.target.clientConfiguration()
        let clients = (0..<self.connections).map { _ in VPPClient(configuration) }
        let started = ContinuousClock.now
        do {
            _ = try await LoadRunner.connectAll(clients, target: self.target.targetDescription)
        } catch {
            await LoadRunner.close(clients)
            throw error
        }
        let connectSeconds = (ContinuousClock.now - started).inSeconds
        let hold = LoadDuration.parse(self.hold) ?? .seconds(10)
        let settle = min(LoadDuration.parse(self.settle) ?? .seconds(2), hold)
        try? await Task.sleep(for: settle)
        let during = self.serverPID.flatMap(ProcessMemory.init(pid:))
        try? await Task.sleep(for: hold - settle)
        await LoadRunner.close(clients)

        let report = IdleReport(
            connections: self.connections,
            connectSeconds: connectSeconds,
            holdSeconds: hold.inSeconds,
            serverRSSBeforeKB: before?.residentKB,
            serverRSSKB: during?.residentKB,
            serverHWMKB: during?.peakResidentKB
        )
        print(self.target.json ? try report.json() : report.human())
    }
}

/// A process's memory from /proc/PID/status (Linux), in KiB.
struct ProcessMemory {
    var residentKB: Int
    var peakResidentKB: Int

    init?(pid: Int) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        self.init(status: text)
    }

    init?(status text: String) {
        func field(_ name: String) -> Int? {
            for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
                return Int(
                    line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces).split(separator: " ").first
                        ?? ""
                )
            }
            return nil
        }
        guard let rss = field("VmRSS") else { return nil }
        self.residentKB = rss
        self.peakResidentKB = field("VmHWM") ?? rss
    }
}

struct IdleReport: Codable, Equatable {
    var connections: Int
    var connectSeconds: Double
    var holdSeconds: Double
    var serverRSSBeforeKB: Int?
    var serverRSSKB: Int?
    var serverHWMKB: Int?

    enum CodingKeys: String, CodingKey {
        case connections
        case connectSeconds = "connect_seconds"
        case holdSeconds = "hold_seconds"
        case serverRSSBeforeKB = "server_rss_before_kb"
        case serverRSSKB = "server_rss_kb"
        case serverHWMKB = "server_hwm_kb"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.connections, forKey: .connections)
        try container.encode(self.connectSeconds, forKey: .connectSeconds)
        try container.encode(self.holdSeconds, forKey: .holdSeconds)
        try container.encode(self.serverRSSBeforeKB, forKey: .serverRSSBeforeKB)
        try container.encode(self.serverRSSKB, forKey: .serverRSSKB)
        try container.encode(self.serverHWMKB, forKey: .serverHWMKB)
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    func human() -> String {
        var lines = [
            "vpp-load idle: \(self.connections) connections opened and authenticated in "
                + String(format: "%.2f", self.connectSeconds) + " s, held " + String(format: "%.0f", self.holdSeconds)
                + " s"
        ]
        if let rss = self.serverRSSKB {
            lines.append(
                "server resident memory: \(rss / 1024) MiB with them open (before: \((self.serverRSSBeforeKB ?? 0) / 1024) MiB, "
                    + "peak \((self.serverHWMKB ?? rss) / 1024) MiB)"
            )
        }
        return lines.joined(separator: "\n")
    }
}
