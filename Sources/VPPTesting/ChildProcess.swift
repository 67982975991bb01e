import Dispatch
public import Foundation

/// Runs a program to its end without blocking Swift's cooperative thread pool: the waiting and the reading of its
/// output happen on a Dispatch queue. (Blocking the pool from a test starves the in-process server's tasks.)
public func runChildProcess(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String]? = nil
) async throws -> (status: Int32, output: String) {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            if let environment { process.environment = environment }
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            do {
                try process.run()
            } catch {
                continuation.resume(throwing: error)
                return
            }
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            continuation.resume(returning: (process.terminationStatus, String(decoding: output, as: UTF8.self)))
        }
    }
}
