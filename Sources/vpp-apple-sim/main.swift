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

    @Option(help: "Seconds after which an event completes on its own (default: after the first /status poll).")
    var eventDelay: Double?

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
            eventCompletion: eventDelay.map { .afterDelay(.milliseconds(Int($0 * 1000))) } ?? .afterFirstPoll
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
        try await app.runService()
    }
}
