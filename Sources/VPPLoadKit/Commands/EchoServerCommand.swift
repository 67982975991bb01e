import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// `vpp-load echo-server`: the transport's limit for the Ping comparison.
struct EchoServerCommand: LoadSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-server",
        abstract: "Run a minimal length-prefixed echo server that speaks vppd's frames (the transport's limit).",
        discussion: """
            Any Hello gets a Welcome; every call is answered with its own request bytes, so `vpp-load ping --port P` \
            measures it with the same client, frames and sizes as vppd. Listens on loopback unless --allow-remote. \
            Prints "listening on HOST:PORT" and runs until --duration has passed or SIGTERM/SIGINT.
            Example: vpp-load echo-server --port 7600 & VPP_API_KEY=x vpp-load ping --port 7600
            """
    )

    @Option(help: "The address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "The port; 0 picks a free one (printed).")
    var port: Int = 7600

    @Option(help: "Stop after this long, e.g. 60s; default: until SIGTERM or SIGINT.")
    var duration: String?

    @Option(name: .customLong("event-loop-threads"), help: "Event loop threads; 0: one per core (as vppd).")
    var eventLoopThreads: Int = 0

    @Flag(help: "Allow a --host that is not loopback.")
    var allowRemote = false

    mutating func validate() throws {
        do {
            try TargetHost.validate(self.host, allowRemote: self.allowRemote)
        } catch {
            throw ValidationError(error.description)
        }
        guard (0...65535).contains(self.port) else { throw ValidationError("--port must be 0 to 65535.") }
        if let duration, LoadDuration.parse(duration) == nil { throw ValidationError("--duration is not a duration.") }
    }

    func execute() async throws {
        let group = MultiThreadedEventLoopGroup(
            numberOfThreads: self.eventLoopThreads > 0 ? self.eventLoopThreads : System.coreCount
        )
        let channel = try await EchoServer(host: self.host, port: self.port).start(group: group)
        // Unbuffered, so that a script waiting for this line sees it at once.
        FileHandle.standardOutput.write(
            Data("listening on \(self.host):\(channel.localAddress?.port ?? self.port)\n".utf8)
        )
        let stop = self.duration.flatMap(LoadDuration.parse)
        let signals = SignalWaiter()
        if let stop {
            try? await Task.sleep(for: stop)
        } else {
            await signals.wait()
        }
        try? await channel.close()
        try await group.shutdownGracefully()
    }
}

/// Waits for SIGTERM or SIGINT (a DispatchSource per signal, the default actions turned off).
final class SignalWaiter: Sendable {
    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let once = OnceResumer(continuation)
            for signalNumber in [SIGTERM, SIGINT] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
                source.setEventHandler { once.resume() }
                source.resume()
                SignalSources.keep(source)
            }
        }
    }
}

private final class OnceResumer: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Never>?
    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }
    func resume() {
        self.lock.lock()
        let continuation = self.continuation
        self.continuation = nil
        self.lock.unlock()
        continuation?.resume()
    }
}

/// Keeps the signal sources alive for the life of the process.
private enum SignalSources {
    nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []
    static let lock = NSLock()
    static func keep(_ source: any DispatchSourceSignal) {
        lock.lock()
        sources.append(source)
        lock.unlock()
    }
}
