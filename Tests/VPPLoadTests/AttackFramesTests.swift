import Testing
import VPPProto
import VPPWire

@testable import VPPLoadKit

/// `vpp-load abuse` must send the attacks it says it sends (issue 16): checked with the server's own wire scan and
/// the generated decoders.
@Suite("The abuse tool's attack frames are what they claim")
struct AttackFramesTests {
    /// The frame's body after its 4-byte big-endian length prefix, checking the prefix.
    private func body(_ frame: [UInt8]) -> [UInt8] {
        let length = Int(frame[0]) << 24 | Int(frame[1]) << 16 | Int(frame[2]) << 8 | Int(frame[3])
        #expect(length == frame.count - 4)
        return Array(frame.dropFirst(4))
    }

    @Test("a metadata flood of the largest frame carries about 2.1 million entries and fits the 4 MiB limit")
    func metadataFlood() throws {
        let entries = AttackFrames.elementsFitting(frameBytes: 4 * 1024 * 1024)
        let frame = AttackFrames.call(callID: 7, method: "/vpp.v1.SystemService/Ping", metadataEntries: entries)
        #expect(frame.count <= 4 * 1024 * 1024 + 4)
        #expect(entries > 2_000_000)
        let body = self.body(frame)
        let counted = try body.withUnsafeBytes { try ProtoWireScan.count(of: 4, inside: 2, of: $0) }
        #expect(counted == entries)
        // A small one decodes as the Call it claims to be.
        let small = try RpcV1.ClientFrame(
            serializedBytes: self.body(AttackFrames.call(callID: 7, method: "/m", metadataEntries: 3))
        )
        guard case .call(let call) = small.kind else {
            Issue.record("not a Call")
            return
        }
        #expect(call.callId == 7 && call.method == "/m" && call.metadata.count == 3)
    }

    @Test("the elements attack is an UpsertUsers call whose request repeats an empty user")
    func elements() throws {
        let users = AttackFrames.emptyElements(count: 1_000)
        #expect(try ProtoWireScan.largestRepetition(users) == 1_000)
        let frame = try RpcV1.ClientFrame(
            serializedBytes: self.body(
                AttackFrames.call(callID: 1, method: "/vpp.v1.DirectoryService/UpsertUsers", request: users)
            )
        )
        guard case .call(let call) = frame.kind else {
            Issue.record("not a Call")
            return
        }
        let request = try VppV1.UpsertUsersRequest(serializedBytes: call.request)
        #expect(request.users.count == 1_000)
        #expect(request.users.allSatisfy { $0.externalId.isEmpty })
    }

    @Test("each attack's bytes: a partial frame is one byte short of its prefix; the floods are whole frames")
    func attackBytes() {
        let partial = AttackFrames.bytes(of: .partialFrame, maxFrameBytes: 4096)
        #expect(Array(partial.prefix(4)) == [0, 0, 0x10, 0] && partial.count == 4 + 4096 - 1)
        for attack in [Attack.metadata, .elements] {
            let frame = AttackFrames.bytes(of: attack, maxFrameBytes: 4096)
            #expect(frame.count <= 4 + 4096)
            _ = self.body(frame)  // checks the prefix against the length
        }
        #expect(AttackFrames.bytes(of: .closeStorm, maxFrameBytes: 4096).isEmpty)
    }

    @Test("the Hello is a well-formed first frame with the key")
    func hello() throws {
        let frame = try RpcV1.ClientFrame(serializedBytes: self.body(AttackFrames.hello(apiKey: "k-1")))
        guard case .hello(let hello) = frame.kind else {
            Issue.record("not a Hello")
            return
        }
        #expect(hello.apiKey == "k-1" && hello.protocolVersion == 1)
        #expect(AttackFrames.varint(300) == [0xac, 0x02])
    }

    @Test("the tally names the server's answers by status and reason")
    func tally() throws {
        var goAway = RpcV1.GoAway()
        goAway.status = RpcV1.Status(code: .invalidArgument, message: "x", reason: "MALFORMED_FRAME")
        var frame = RpcV1.ServerFrame()
        frame.kind = .goAway(goAway)
        let bytes = frame.serializedBytes()
        #expect(AttackTally.describe(bytes) == "GoAway INVALID_ARGUMENT MALFORMED_FRAME")
        #expect(AttackTally.describe(nil) == "closed")
    }
}
