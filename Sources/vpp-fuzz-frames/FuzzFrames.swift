import Foundation
import NIOCore
import VPPProto
import VPPWire

/// A libFuzzer target for the Swift side of what a peer sends (issue 16): the bytes of one connection go through the
/// server's `FrameDecoder` (with the pre-authentication limit, the full limit once a Hello was taken, and a frame
/// budget), each frame through the wire scans and the `ClientFrame` decoder, and each decoded frame through the
/// `ServerConnectionStateMachine`, as `ServerConnectionHandler` does. The first input byte picks how the stream is cut
/// into reads (TCP delivers any split). Nothing may crash, trap, or leave the budget holding bytes.
///
/// Built by `Scripts/fuzz.sh` with `-sanitize=fuzzer,address -D VPP_LIBFUZZER` (libFuzzer supplies `main`). Built
/// normally (`swift build --product vpp-fuzz-frames`), it replays the inputs named on its command line: a crash that
/// the fuzzer found, under the debugger.
enum FuzzFrames {
    static let maxFrameBytes = 64 * 1024

    static func run(_ data: UnsafeRawBufferPointer) {
        guard let cut = data.first else { return }
        let stream = UnsafeRawBufferPointer(rebasing: data.dropFirst())
        let budget = FrameBudget(limit: 256 * 1024)
        let limits = FrameLimits(preAuthenticationBytes: 1024, maxFrameBytes: Self.maxFrameBytes, budget: budget)
        var decoder = FrameDecoder(limits: limits)
        var machine = ServerConnectionStateMachine<String>(maxCallsInFlight: 8)
        var buffer = ByteBuffer()
        var offset = 0
        // Reads of 1 to 256 bytes, the size stepping with the cut byte.
        var step = Int(cut % 64) + 1
        connection: while offset < stream.count {
            let size = min(step, stream.count - offset)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: stream[offset..<(offset + size)]))
            offset += size
            step = (step * 5 + Int(cut)) % 256 + 1
            while true {
                let frame: ByteBuffer?
                do {
                    frame = try decoder.decode(buffer: &buffer)
                } catch {
                    break connection  // too large, over budget: the connection closes
                }
                guard let frame else { break }
                if !Self.handle(frame, machine: &machine, limits: limits) { break connection }
            }
        }
        limits.releaseReservation()
        // Every byte the connection reserved is given back when it ends.
        precondition(budget.inUse == 0, "the frame budget still holds \(budget.inUse) bytes after the connection ended")
    }

    /// One frame, as the connection handler treats it; false when the connection would close.
    static func handle(_ frame: ByteBuffer, machine: inout ServerConnectionStateMachine<String>, limits: FrameLimits)
        -> Bool
    {
        let metadata = frame.withUnsafeReadableBytes {
            try? ProtoWireScan.count(of: 4, inside: 2, of: $0, stoppingAbove: 64)
        }
        if let metadata, metadata > 64 { return false }
        guard let decoded = try? RpcV1.ClientFrame(buffer: frame) else {
            _ = machine.undecodableFrame("fuzz")
            return false
        }
        switch machine.frameReceived(decoded, at: .uptimeNanoseconds(0)) {
        case .authenticate:
            // The key is taken: full-size frames from now on, as after a Welcome.
            guard machine.authenticationSucceeded("fuzz", at: .uptimeNanoseconds(0)) else { return false }
            limits.authenticated()
        case .startCall(let call):
            _ = try? ProtoWireScan.largestRepetition(call.request, stoppingAbove: 10_000)
            _ = machine.callFinished(call.callId, status: .ok)
        case .closeWithError:
            return false
        case .none, .send, .cancelCall:
            break
        }
        return true
    }
}

#if VPP_LIBFUZZER
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        FuzzFrames.run(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }

    @_silgen_name("LLVMFuzzerRunDriver")
    func runFuzzerDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
    ) -> Int32

    /// SwiftPM links an executable's entry point as `<module>_main`: hand the command line to libFuzzer's driver.
    @_cdecl("vpp_fuzz_frames_main")
    public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
        var count = argc
        var arguments = argv
        return runFuzzerDriver(&count, &arguments) { data, size in fuzzOneInput(data, size) }
    }
#else
    @main
    struct ReplayInputs {
        static func main() throws {
            let paths = CommandLine.arguments.dropFirst()
            guard !paths.isEmpty else {
                FileHandle.standardError.write(
                    Data("usage: vpp-fuzz-frames INPUT...  (replays fuzzer inputs; Scripts/fuzz.sh fuzzes)\n".utf8)
                )
                exit(2)
            }
            for path in paths {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                bytes.withUnsafeBytes { FuzzFrames.run($0) }
                print("\(path): ok")
            }
        }
    }
#endif
