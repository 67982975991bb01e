import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOPosix

/// A program of this package (vppd, vppctl, ...) run as a separate process by a test: started, waited for, and
/// stopped with SIGTERM. Its output goes to a log file that a failing test can print.
public final class DaemonProcess: @unchecked Sendable {
    public let process: Process
    public let logFile: String

    private init(process: Process, logFile: String) {
        self.process = process
        self.logFile = logFile
    }

    /// The directory of the package's built products: where the test runner itself lives (`.build/debug`).
    public static var productsDirectory: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
    }

    /// The path of a product built with the tests (`swift build --build-tests` builds them all).
    public static func product(_ name: String) throws -> String {
        var directory = URL(fileURLWithPath: Self.productsDirectory)
        // The runner may sit inside a bundle (…/debug/X.xctest/Contents/MacOS): climb to the directory holding it.
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        throw DaemonProcessError(
            "The \(name) program is not built next to the tests (\(Self.productsDirectory)); run `swift build --build-tests` first."
        )
    }

    public static func start(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]
    ) throws -> DaemonProcess {
        let logFile =
            NSTemporaryDirectory() + "\(URL(fileURLWithPath: executable).lastPathComponent)-\(UUID().uuidString).log"
        FileManager.default.createFile(atPath: logFile, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return DaemonProcess(process: process, logFile: logFile)
    }

    /// The log so far.
    public var log: String {
        (try? String(contentsOfFile: self.logFile, encoding: .utf8)) ?? ""
    }

    /// Waits until `GET http://127.0.0.1:<port><path>` answers 200, or throws with the log when the process ends or
    /// `timeout` passes.
    public func waitUntilReady(metricsPort: Int, path: String = "/readyz", timeout: Duration = .seconds(60))
        async throws
    {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard self.process.isRunning else {
                throw DaemonProcessError(
                    "The process ended (\(self.process.terminationStatus)) before it was ready:\n\(self.log)"
                )
            }
            if let (status, _) = try? await Self.httpGet(port: metricsPort, path: path), status == 200 {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw DaemonProcessError("The process was not ready within \(timeout):\n\(self.log)")
    }

    /// `GET http://127.0.0.1:<port><path>`: the status and the body (up to 16 MiB).
    public static func httpGet(port: Int, path: String) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .GET
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 16 * 1024 * 1024)
        return (Int(response.status.code), String(buffer: body))
    }

    /// Sends SIGTERM (a graceful stop) and waits for the process to end; returns its exit status.
    @discardableResult
    public func stop() async -> Int32 {
        if self.process.isRunning { self.process.terminate() }
        let process = self.process
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                process.waitUntilExit()
                continuation.resume(returning: process.terminationStatus)
            }
        }
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it; another process could take it meanwhile).
    public static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }
}

public struct DaemonProcessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
