import AppleVPP
import AppleVPPSimulator
import ArgumentParser
import Foundation
import Logging

/// Runs the simulator of Apple's App and Book Management API v2 until SIGINT or SIGTERM.
@main
struct VPPAppleSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vpp-apple-sim",
        abstract: "A local simulator of Apple's App and Book Management API v2 (docs/apple-simulator.md)."
    )

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port).")
    var port = 8090

    @Option(help: "JSON fixture to start from (locations, assets, users, assignments, public apps).")
    var fixture: String?

    @Option(help: "Directory to write each location's first token to, as <uId>.vpptoken.")
    var tokenDir: String?

    @Option(help: "Items per page of /assets, /assignments and /users.")
    var pageSize = 1000

    @Option(
        help: "Seconds after which an event completes on its own and notifies (default: after the first /status poll)."
    )
    var eventDelay: Double?

    @Option(
        help: "Comma-separated seconds before each retry of an undelivered notification (Apple: 3 tries in 1-5 min)."
    )
    var notificationRetryDelays = "60,240"

    @Option(help: "Seconds one notification attempt (and the TEST_NOTIFICATION handshake) may take.")
    var notificationTimeout: Double = 10

    func validate() throws {
        _ = try Self.parseDelays(notificationRetryDelays)
        guard notificationTimeout > 0 else { throw ValidationError("--notification-timeout must be positive") }
    }

    /// "60,240" as durations; "" for no retries.
    static func parseDelays(_ text: String) throws -> [Duration] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        if parts == [""] { return [] }
        return try parts.map { part in
            guard let seconds = Double(part), seconds >= 0 else {
                throw ValidationError("--notification-retry-delays: '\(part)' is not a number of seconds")
            }
            return .milliseconds(Int(seconds * 1000))
        }
    }

    func run() async throws {
        var logger = Logger(label: "vpp-apple-sim")
        logger.logLevel = .info
        let loaded: SimulatorFixture? = try fixture.map {
            try JSONDecoder().decode(SimulatorFixture.self, from: Data(contentsOf: URL(fileURLWithPath: $0)))
        }
        let configuration = SimulatorConfiguration(
            host: host,
            port: port,
            pageSize: pageSize,
            eventCompletion: eventDelay.map { .afterDelay(.milliseconds(Int($0 * 1000))) } ?? .afterFirstPoll,
            notificationRetryDelays: try Self.parseDelays(notificationRetryDelays),
            notificationTimeout: .milliseconds(Int(notificationTimeout * 1000))
        )
        let core = try SimulatorCore(configuration: configuration)
        let locations = try loaded.map { try core.load($0) } ?? []
        if let tokenDir {
            try FileManager.default.createDirectory(atPath: tokenDir, withIntermediateDirectories: true)
            for location in locations {
                let path = (tokenDir as NSString).appendingPathComponent("\(location.uId).vpptoken")
                try Data(location.vppToken.utf8).write(to: URL(fileURLWithPath: path))
                logger.info("wrote token file", metadata: ["uId": "\(location.uId)", "path": "\(path)"])
            }
        }
        let readyLogger = logger
        let app = AppleVPPSimulator.makeApplication(core: core, logger: logger) { port in
            core.setBaseURL("http://\(host):\(port)/mdm/v2")
            readyLogger.info(
                "simulator ready",
                metadata: [
                    "api": "http://\(host):\(port)/mdm/v2", "control": "http://\(host):\(port)/_control",
                ]
            )
        }
        do {
            try await app.runService()
        } catch {
            await core.shutdown()
            throw error
        }
        // The application has stopped: stop the notification deliveries and their HTTP client.
        await core.shutdown()
    }
}
