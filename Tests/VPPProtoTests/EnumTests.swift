import Testing
import VPPProto

@Suite("Generated enums")
struct EnumTests {
    @Test("Case names are lowerCamelCase of the proto value names, with gRPC's numbers")
    func caseNames() {
        #expect(RpcV1.StatusCode.invalidArgument.rawValue == 3)
        #expect(RpcV1.StatusCode(rawValue: 16) == .unauthenticated)
        #expect(RpcV1.StatusCode() == .ok)
        #expect(RpcV1.StatusCode.allCases.count == 17)
        #expect(RpcV1.StatusCode.allCases.map(\.rawValue) == Array(0...16))
    }

    @Test("An enum number the schema does not define survives a round-trip as .unrecognized")
    func unknownNumberRoundTrips() throws {
        for number: Int32 in [17, 99, 1 << 30, .max, -1, .min] {
            var status = RpcV1.Status()
            status.code = RpcV1.StatusCode(rawValue: number)
            #expect(status.code == .unrecognized(number))
            let decoded = try RpcV1.Status(serializedBytes: status.serializedBytes())
            #expect(decoded.code == .unrecognized(number))
            #expect(decoded.code.rawValue == number)
        }
    }

    @Test("An unknown enum number from the wire decodes as .unrecognized and re-encodes as the same number")
    func unknownNumberFromWire() throws {
        // Status { code: 99 }: field 1, varint.
        let bytes: [UInt8] = [0x08, 0x63]
        let status = try RpcV1.Status(serializedBytes: bytes)
        #expect(status.code == .unrecognized(99))
        #expect(status.serializedBytes() == bytes)
    }
}
