import Benchmark
import NIOCore
import VPPProto
import VPPWire

/// A Ping call as vpp-load sends it (32-byte payload) and the catalog page ListApps answers (20 apps): the frames of
/// the two ends of the standard comparison.
private func pingCallFrame() -> RpcV1.ClientFrame {
    var ping = VppV1.PingRequest()
    ping.payload = (0..<32).map { UInt8($0) }
    var call = RpcV1.Call()
    call.callId = 12_345
    call.method = VppV1.SystemService.Ping.path
    call.timeoutMs = 10_000
    call.request = ping.serializedBytes()
    var frame = RpcV1.ClientFrame()
    frame.kind = .call(call)
    return frame
}

private func appsPage() -> VppV1.ListAssetsResponse {
    var response = VppV1.ListAssetsResponse()
    response.assets = (0..<20).map { number in
        var asset = VppV1.Asset()
        asset.id = "7f1c2a9e-4b7d-4c1e-9a51-\(String(format: "%012d", number))"
        asset.tokenId = "0b6f3c52-1d2e-4f9a-8c3b-5e6d7f8a9b0c"
        asset.adamId = String(4_000_000_000 + number)
        asset.name = "Load App \(number)"
        asset.bundleId = "load.app\(number)"
        asset.platforms = ["iOS", "macOS"]
        var counts = VppV1.LicenseCounts()
        counts.total = 100
        counts.inUse = UInt32(number)
        counts.available = UInt32(100 - number)
        asset.counts = counts
        return asset
    }
    return response
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .instructions],
        scalingFactor: .kilo,
        maxDuration: .seconds(3)
    )

    let frame = pingCallFrame()
    let allocator = ByteBufferAllocator()

    Benchmark("Frame encode: Ping call (pack into the outgoing buffer)") { benchmark in
        var buffer = allocator.buffer(capacity: 256)
        for _ in benchmark.scaledIterations {
            buffer.clear()
            blackHole(try buffer.writeFrame(frame))
        }
    }

    var framed = allocator.buffer(capacity: 256)
    try! framed.writeFrame(frame)
    Benchmark("Frame decode: split one Ping call frame") { benchmark in
        for _ in benchmark.scaledIterations {
            var decoder = FrameDecoder(maxFrameBytes: 4 << 20)
            var input = framed
            blackHole(try decoder.decode(buffer: &input))
        }
    }

    Benchmark("Envelope unpack: ClientFrame with a Ping call (protobuf-c)") { benchmark in
        let body = framed.getSlice(at: 4, length: framed.readableBytes - 4)!
        for _ in benchmark.scaledIterations {
            blackHole(try RpcV1.ClientFrame(buffer: body))
        }
    }

    Benchmark("Envelope pack: final reply to a Ping (protobuf-c)") { benchmark in
        let request = (0..<34).map { UInt8($0) }
        let ok = RpcV1.Status(code: .ok, message: "")
        for _ in benchmark.scaledIterations {
            blackHole(
                ServerConnectionStateMachine.finalReply(callID: 12_345, status: ok, message: request).serializedBytes()
            )
        }
    }

    let page = appsPage()
    Benchmark("Message pack: ListApps page of 20 (protobuf-c)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(page.serializedBytes())
        }
    }

    let packedPage = page.serializedBytes()
    Benchmark("Message unpack: ListApps page of 20 (protobuf-c)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try packedPage.withUnsafeBytes { try VppV1.ListAssetsResponse(serializedBytes: $0) })
        }
    }
}
