import Foundation
import Testing

@Suite("Generated code")
struct GeneratedCodeFreshnessTests {
    @Test("The committed C and Swift code matches what Scripts/generate-protos.sh generates from Protos/")
    func generatedCodeIsFresh() throws {
        // Tests/VPPProtoTests/<this file> -> the repository root.
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [root.appendingPathComponent("Scripts/generate-protos.sh").path, "--check"]
        process.currentDirectoryURL = root
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(
            process.terminationStatus == 0,
            "Scripts/generate-protos.sh --check exited \(process.terminationStatus):\n\(text)"
        )
    }
}
