import Testing

@testable import VPPLoadKit

@Suite("vpp-load sends load only to this machine unless told otherwise")
struct TargetHostTests {
    @Test(arguments: [
        "127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1",
    ])
    func loopbackHostsAreAccepted(host: String) throws {
        #expect(TargetHost.isLoopback(host))
        try TargetHost.validate(host, allowRemote: false)
    }

    @Test(arguments: [
        "10.0.0.1", "192.168.1.10", "8.8.8.8", "::2", "::ffff:10.0.0.1", "example.com", "127.0.0.1.example.com", "",
        "0.0.0.0",
    ])
    func otherHostsAreRefused(host: String) {
        #expect(!TargetHost.isLoopback(host))
        #expect(throws: TargetHostError(host: host)) { try TargetHost.validate(host, allowRemote: false) }
    }

    @Test func allowRemoteLetsAnyHostThrough() throws {
        try TargetHost.validate("10.0.0.1", allowRemote: true)
    }

    @Test func pingRefusesARemoteHostWhenParsing() {
        #expect(throws: (any Error).self) {
            _ = try PingCommand.parse(["--host", "10.0.0.1", "--api-key", "k"])
        }
        #expect(throws: Never.self) {
            _ = try PingCommand.parse(["--host", "10.0.0.1", "--api-key", "k", "--allow-remote"])
        }
    }

    @Test func pingTakesADurationOrACallCountButNotBoth() throws {
        #expect(try PingCommand.parse(["--api-key", "k", "--calls", "5"]).bound() == .calls(5))
        #expect(try PingCommand.parse(["--api-key", "k"]).bound() == .duration(.seconds(10)))
        #expect(
            try PingCommand.parse(["--api-key", "k", "--duration", "500ms"]).bound() == .duration(.milliseconds(500))
        )
        #expect(throws: (any Error).self) {
            _ = try PingCommand.parse(["--api-key", "k", "--calls", "5", "--duration", "1s"])
        }
    }
}
