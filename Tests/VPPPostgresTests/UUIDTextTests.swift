import Foundation
import Testing
import VPPPostgres

@Suite("UUID text")
struct UUIDTextTests {
    @Test("the canonical text round-trips and matches Foundation's, for random ids and the extremes")
    func matchesFoundation() {
        var ids = (0..<2_000).map { _ in UUID() }
        ids.append(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
        ids.append(UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255)))
        for id in ids {
            #expect(id.lowercasedText == id.uuidString.lowercased())
            #expect(UUID(canonicalText: id.lowercasedText) == id)
            #expect(UUID(canonicalText: id.uuidString) == id, "upper case")
        }
    }

    @Test(
        "texts that are not a canonical id are refused, as Foundation refuses them",
        arguments: [
            "", "0", "not-a-uuid", "a2c4e6f8-1234-5678-9abc-def012345678 ", " a2c4e6f8-1234-5678-9abc-def012345678",
            "a2c4e6f8123456789abcdef012345678", "{a2c4e6f8-1234-5678-9abc-def012345678}",
            "a2c4e6f8-1234-5678-9abc-def01234567",
            "a2c4e6f8-1234-5678-9abc-def0123456789", "a2c4e6f8-1234-5678-9abc_def012345678",
            "g2c4e6f8-1234-5678-9abc-def012345678",
            "a2c4e6f8-1234-5678-9abc-def01234567\u{e9}", "'; DROP TABLE x; --",
        ]
    )
    func refusesWhatFoundationRefuses(_ text: String) {
        #expect(UUID(canonicalText: text) == nil)
        #expect(UUID(uuidString: text) == nil, "Foundation refuses it too")
    }

    @Test(
        "stricter than Foundation, whose sscanf takes a sign for a digit and stops at a NUL",
        arguments: [
            "a2c4e6f8--234-5678-9abc-def012345678", "a2c4e6f8-1234-5678-9abc-def012345678\u{0}",
        ]
    )
    func refusesWhatFoundationLetsThrough(_ text: String) {
        #expect(UUID(canonicalText: text) == nil)
    }
}
