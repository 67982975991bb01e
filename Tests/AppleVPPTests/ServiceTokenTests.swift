import AppleVPP
import Foundation
import Testing

@Suite("ServiceToken: parsing and validating .vpptoken files")
struct ServiceTokenTests {
    static let now = AppleDate.parse("2026-01-01T00:00:00+0000")!
    static let secret = "VFdwQmVVMUVRVEJOUkVFd1RXcEJlazVFUlRST1ZHdDNUVlJuZDA1VVVUTk9WRUUwVGxSbk1FMVVaejA9"

    static func file(_ json: String) -> String { Data(json.utf8).base64EncodedString() }
    static func valid(expDate: String = "2030-11-08T22:33:22+0000") -> String {
        file(#"{"token":"\#(secret)","expDate":"\#(expDate)","orgName":"ORG12345"}"#)
    }

    @Test func parsesAValidFile() throws {
        let text = Self.valid()
        let token = try ServiceToken(fileContents: text, now: Self.now)
        #expect(token.orgName == "ORG12345")
        #expect(token.expirationDate == AppleDate.parse("2030-11-08T22:33:22Z"))
        #expect(token.bearerCredential == text)
        #expect(!token.isExpired(at: Self.now))
    }

    @Test func toleratesWhitespaceAroundAndInsideTheBase64() throws {
        let text = Self.valid()
        let wrapped = "\n  " + text.prefix(20) + "\r\n" + text.dropFirst(20) + "\n\n"
        let token = try ServiceToken(fileContents: Array(wrapped.utf8), now: Self.now)
        #expect(token.bearerCredential == text)
    }

    @Test func refusesAnEmptyFile() {
        #expect(throws: ServiceTokenError.empty) { try ServiceToken(fileContents: " \n", now: Self.now) }
    }

    @Test func refusesGarbage() {
        #expect(throws: ServiceTokenError.notBase64) {
            try ServiceToken(fileContents: "this is not a token!", now: Self.now)
        }
        #expect(throws: ServiceTokenError.notBase64) {
            try ServiceToken(fileContents: [0xFF, 0xFE, 0x00, 0x41], now: Self.now)
        }
    }

    @Test func refusesATruncatedFile() {
        let text = Self.valid()
        // Cut inside a Base64 quantum: no longer Base64.
        #expect(throws: ServiceTokenError.notBase64) {
            try ServiceToken(fileContents: String(text.prefix(text.count - 3)), now: Self.now)
        }
        // Cut at a quantum boundary: Base64, but the JSON is cut off.
        let cut = String(text.prefix((text.count / 2) / 4 * 4))
        #expect(throws: ServiceTokenError.notJSON) { try ServiceToken(fileContents: cut, now: Self.now) }
    }

    @Test func refusesBase64ThatIsNotAJSONObject() {
        #expect(throws: ServiceTokenError.notJSON) {
            try ServiceToken(fileContents: Self.file("hello, world"), now: Self.now)
        }
        #expect(throws: ServiceTokenError.notJSON) {
            try ServiceToken(fileContents: Self.file(#"["token","expDate","orgName"]"#), now: Self.now)
        }
    }

    @Test(arguments: ["token", "expDate", "orgName"])
    func namesAMissingField(_ field: String) {
        var fields = ["token": Self.secret, "expDate": "2030-11-08T22:33:22+0000", "orgName": "ORG"]
        fields[field] = nil
        let json = String(decoding: try! JSONSerialization.data(withJSONObject: fields), as: UTF8.self)
        #expect(throws: ServiceTokenError.missingField(field)) {
            try ServiceToken(fileContents: Self.file(json), now: Self.now)
        }
    }

    @Test func namesAFieldOfTheWrongType() {
        let json = #"{"token":"x","expDate":"2030-11-08T22:33:22+0000","orgName":42}"#
        #expect(throws: ServiceTokenError.invalidField("orgName")) {
            try ServiceToken(fileContents: Self.file(json), now: Self.now)
        }
    }

    @Test(arguments: ["08/11/2030", "2030-13-08T22:33:22+0000", "2030-02-31T22:33:22+0000", "2030-11-08 22:33:22", ""])
    func refusesABadExpiryDate(_ expDate: String) {
        let expected: ServiceTokenError = expDate.isEmpty ? .missingField("expDate") : .badExpiryDate
        #expect(throws: expected) { try ServiceToken(fileContents: Self.valid(expDate: expDate), now: Self.now) }
    }

    @Test func refusesAnExpiredToken() {
        let expiry = AppleDate.parse("2025-12-31T23:59:59+0000")!
        #expect(throws: ServiceTokenError.expired(expiry)) {
            try ServiceToken(fileContents: Self.valid(expDate: "2025-12-31T23:59:59+0000"), now: Self.now)
        }
    }

    @Test func neverPrintsTheCredential() throws {
        let token = try ServiceToken(fileContents: Self.valid(), now: Self.now)
        var dumped = ""
        dump(token, to: &dumped)
        for text in [token.description, token.debugDescription, "\(token)", String(reflecting: token), dumped] {
            #expect(!text.contains(Self.secret))
            #expect(!text.contains(token.bearerCredential))
            #expect(text.contains("ORG12345"))
        }
        for error in [ServiceTokenError.notBase64, .notJSON, .badExpiryDate, .expired(Self.now)] {
            #expect(!error.description.isEmpty)
        }
    }

    @Test func appleDatesInTheirVariants() {
        let reference = AppleDate.parse("2030-11-08T22:33:22+0000")
        #expect(reference != nil)
        #expect(AppleDate.parse("2030-11-08T22:33:22Z") == reference)
        #expect(AppleDate.parse("2030-11-08T23:33:22+01:00") == reference)
        #expect(AppleDate.parse("2030-11-08T17:33:22-0500") == reference)
        #expect(AppleDate.parse("2030-11-08T22:33:22.000Z") == reference)
        #expect(AppleDate.format(reference!) == "2030-11-08T22:33:22+0000")
        #expect(AppleDate.parse("2030-11-08T22:33:22") == nil)
        #expect(AppleDate.parse("2030-11-08T22:33:22+0000x") == nil)
    }
}
