import Foundation
import Logging
import NIOCore
import Testing
import VPPProto
import VPPTesting
import VPPWire

@testable import VPPServer

/// Issue 16: repeated fields are counted on the wire before anything is decoded, so a small frame cannot make the
/// server allocate millions of elements.
@Suite("Repeated fields are bounded before decoding")
struct ElementLimitTests {
    /// `count` empty elements of field `field` (tag, zero length): two bytes each.
    static func emptyElements(field: UInt8, count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(2 * count)
        for _ in 0..<count { bytes += [(field << 3) | 2, 0] }
        return bytes
    }

    @Test("the wire scan counts a repeated field's elements and refuses bytes that are not wire format")
    func scan() throws {
        #expect(try ProtoWireScan.largestRepetition(Self.emptyElements(field: 1, count: 3)) == 3)
        let users = VppV1.UpsertUsersRequest(users: (0..<7).map { index in VppV1.UserInput(externalId: "u\(index)") })
        #expect(try ProtoWireScan.largestRepetition(users.serializedBytes()) == 7)
        #expect(throws: ProtoWireScan.Malformed.self) { try ProtoWireScan.largestRepetition([0x0a, 0x05, 0x01]) }
        #expect(throws: ProtoWireScan.Malformed.self) { try ProtoWireScan.largestRepetition([0x0b]) }
        // Refusing costs no more than the limit's worth: the scan stops at the first element over it.
        let flood = Self.emptyElements(field: 1, count: 2_000_000)
        #expect(try ProtoWireScan.largestRepetition(flood, stoppingAbove: 10_000) == 10_001)
        #expect(
            try ProtoWireScan.largestRepetition(flood + [0x0b], stoppingAbove: 10) == 11,
            "bytes after the stop are not read"
        )
        let call: [UInt8] = [0x12, UInt8(2 * 50)] + Self.emptyElements(field: 4, count: 50)
        #expect(try call.withUnsafeBytes { try ProtoWireScan.count(of: 4, inside: 2, of: $0, stoppingAbove: 32) } == 33)
        #expect(try call.withUnsafeBytes { try ProtoWireScan.count(of: 4, inside: 2, of: $0) } == 50)
    }

    @Test("a request with 2 million empty users is refused with TOO_MANY_ELEMENTS before it is decoded")
    func tooManyElements() async throws {
        var router = RPCRouter()
        router.register(VppV1.DirectoryService.UpsertUsers.self, requires: .tenant) { request, _ in
            Issue.record("the handler ran with \(request.users.count) users")
            return VppV1.UpsertResponse()
        }
        let route = try router.route(for: VppV1.DirectoryService.UpsertUsers.path).get()
        let context = CallContext(
            callID: 1,
            method: route.path,
            principal: Principal(kind: .tenant, tenantID: nil, keyID: "k", keyName: "k"),
            deadline: nil,
            metadata: [:],
            logger: Logger(label: "test"),
            remoteAddress: "test"
        )
        let attack = Self.emptyElements(field: 1, count: 2_097_052)
        do {
            _ = try await route.invoke(attack, context) { _ in }
            Issue.record("the attack was accepted")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
            #expect(error.reason == "TOO_MANY_ELEMENTS")
            #expect(error.message.contains("more than 10000"))
        }
        // At the limit, the request decodes (and the bulk call's own 5,000 rule answers after).
        let atLimit = Self.emptyElements(field: 1, count: RPCRouter.maxRepeatedElements)
        var ran = false
        var limitRouter = RPCRouter()
        limitRouter.register(VppV1.DirectoryService.UpsertUsers.self, requires: .tenant) { request, _ in
            #expect(request.users.count == RPCRouter.maxRepeatedElements)
            return VppV1.UpsertResponse()
        }
        _ = try await limitRouter.route(for: route.path).get().invoke(atLimit, context) { _ in }
        ran = true
        #expect(ran)
    }

    @Test(
        "a Call with 2 million metadata entries closes the connection with MALFORMED_FRAME at once; others are served"
    )
    func metadataFlood() async throws {
        let server = try await TestServer.start()
        let raw = try await RawConnection.connect(port: server.port)
        try await raw.hello(apiKey: TestServer.tenantKey)
        guard case .frame(let welcome) = await raw.next(), case .welcome = welcome.kind else {
            Issue.record("expected a Welcome")
            return
        }
        // ClientFrame{call: Call{call_id: 1, metadata: [{} x 2,000,000]}}, hand-encoded: under the 4 MiB limit.
        let metadata = Self.emptyElements(field: 4, count: 2_000_000)
        var call: [UInt8] = [0x08, 0x01] + metadata
        var length = call.count
        var prefix: [UInt8] = []
        while length >= 0x80 {
            prefix.append(UInt8(length & 0x7f) | 0x80)
            length >>= 7
        }
        prefix.append(UInt8(length))
        call = [0x12] + prefix + call
        var frame: [UInt8] = withUnsafeBytes(of: UInt32(call.count).bigEndian) { Array($0) }
        frame += call
        let started = ContinuousClock.now
        try await raw.send(bytes: frame)
        let frames = await raw.framesUntilClosed()
        guard case .goAway(let goAway) = frames.last?.kind else {
            Issue.record("expected a GoAway, got \(frames)")
            return
        }
        #expect(goAway.status?.code == .invalidArgument)
        #expect(goAway.status?.details.first?.reason == GoAwayReason.malformedFrame.rawValue)
        #expect(goAway.status?.message.contains("more than 64") == true)
        print("metadata flood refused in \(started.duration(to: .now))")
        let client = server.client()
        let pong = try await client.call(VppV1.SystemService.Ping.self, VppV1.PingRequest("still here"))
        #expect(pong.payload == Array("still here".utf8))
        await client.close()
        await server.stop()
    }
}
