import Foundation
import Logging
import Testing
import VPPJobs
import VPPProto
import VPPStorage
import VPPWire

@testable import AppleVPP
@testable import VPPPostgres
@testable import VPPServices
@testable import VPPSync
@testable import VPPTokens

/// Every error type a service can throw reaches the client as a status somebody chose (issue 16), never as the
/// fallback INTERNAL for an error nobody expected.
@Suite("Error mapping")
struct ErrorMappingTests {
    static let logger = Logger(label: "test.errors")

    /// One sample of each error type of the modules services call, with the status it must map to.
    static let samples: [String: (error: any Error, code: RpcV1.StatusCode)] = [
        "RPCError": (RPCError.notFound("x"), .notFound),
        "StorageError": (StorageError.failedPrecondition("x", reason: "Y"), .failedPrecondition),
        "ChangeCursorExpired": (ChangeCursorExpired(cursor: 3, oldest: 10), .failedPrecondition),
        "JobQueueError": (
            JobQueueError.invalidArgument("page_token is not a token this server issued.", field: "page.page_token"),
            .invalidArgument
        ),
        "PostgresError": (PostgresError(kind: .connectionFailure, message: "down"), .unavailable),
        "AppleUnavailableError": (AppleUnavailableError(message: "Apple is slow; retry later."), .unavailable),
        "AppleVPPError": (AppleVPPError(kind: .transport, message: "reset"), .unavailable),
        "AppleVPPBatchError": (
            AppleVPPBatchError(
                submitted: [],
                failedBatchIndex: 0,
                error: AppleVPPError(kind: .transport, message: "reset")
            ), .unavailable
        ),
        "SyncFailure": (SyncFailure(disposition: .retry(after: nil), message: "later"), .unavailable),
        "ServiceTokenError": (ServiceTokenError.notBase64, .invalidArgument),
        "ProtoDecodingError": (ProtoDecodingError(messageName: "vpp.v1.X", reason: "malformed"), .invalidArgument),
        "TokenCipherError": (TokenCipherError.wrongKey("key 2 is not loaded"), .internal),
        "PostgresDecodingError": (
            PostgresDecodingError(
                reason: .invalidText,
                column: "id",
                columnIndex: 0,
                swiftType: "UUID",
                postgresType: .bool
            ),
            .internal
        ),
    ]

    /// Error types that never reach a service's call (with why).
    static let notThrownByServices: Set<String> = [
        "FrameError", "FrameEncodingError",  // the connection's framing: answered with a GoAway, not a call status
        "EmbeddedPostgresError",  // start-up of the embedded cluster only
        "SettingsError", "ConfigurationError",  // start-up configuration
        "PrincipalRevoked",  // the connection handler's own signal: becomes a GoAway
        "Reason",  // PostgresDecodingError.Reason: thrown only inside a PostgresDecodingError
        "Malformed",  // ProtoWireScan.Malformed: caught where frames and requests are decoded, answered there
        "Stop",  // ProtoWireScan.Stop: ends a scan at its limit, caught inside the scan
    ]

    @Test("Each error type maps to its chosen status, with a reason where a client must tell causes apart")
    func chosenStatuses() {
        for (name, sample) in Self.samples {
            let mapped = ServiceErrorMapper.deliberate(sample.error, logger: Self.logger)
            #expect(mapped != nil, "\(name) has no chosen status")
            #expect(mapped?.code == sample.code, "\(name) maps to \(mapped?.code as Any), not \(sample.code)")
        }
        // An Apple outage and a database outage say which it is (neither is a revoked key).
        #expect(ServiceErrorMapper.map(AppleUnavailableError(message: "x"), Self.logger).reason == "APPLE_UNAVAILABLE")
        #expect(
            ServiceErrorMapper.map(PostgresError(kind: .connectionFailure, message: "x"), Self.logger).reason
                == "DATABASE_UNAVAILABLE"
        )
    }

    @Test(
        "Every error type declared in the modules services use has a chosen status (or is listed as never thrown there)"
    )
    func everyErrorTypeIsCovered() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let modules = [
            "AppleVPP", "VPPSync", "VPPTokens", "VPPPush", "VPPStorage", "VPPPostgres", "VPPProto", "VPPWire",
            "VPPServer", "VPPServices", "VPPJobs", "VPPLicensing",
        ]
        let declaration = try Regex(#"(?:struct|enum|class)\s+(\w+)\s*:[^{]*\bError\b"#)
        var found: Set<String> = []
        for module in modules {
            let directory = root.appendingPathComponent("Sources").appendingPathComponent(module)
            guard let files = FileManager.default.enumerator(atPath: directory.path) else { continue }
            for case let file as String in files where file.hasSuffix(".swift") {
                let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
                for match in text.matches(of: declaration) {
                    if let name = match.output[1].substring { found.insert(String(name)) }
                }
            }
        }
        #expect(found.contains("AppleUnavailableError"), "the scan found \(found.sorted())")
        let uncovered = found.subtracting(Self.samples.keys).subtracting(Self.notThrownByServices)
        #expect(
            uncovered.isEmpty,
            "error types without a chosen status: \(uncovered.sorted()); add them to ServiceErrorMapper.deliberate and to this test"
        )
    }
}
