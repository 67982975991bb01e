import Foundation
import Testing

@testable import VPPLoadKit

@Suite("The report's JSON has stable field names")
struct ReportTests {
    private func report(bound: LoadPlan.Bound) -> Report {
        var recorder = LatencyRecorder()
        for micros in [100, 200, 300, 400, 5000] {
            recorder.recordSuccess(.microseconds(micros))
        }
        recorder.recordFailure(status: "UNAVAILABLE", message: "The server is draining.")
        let plan = LoadPlan(connections: 2, concurrency: 8, bound: bound, callTimeout: .seconds(10))
        let result = LoadResult(recorder: recorder, elapsed: .seconds(2))
        return Report(workload: PingWorkload(payloadBytes: 4), target: "127.0.0.1:7443", plan: plan, result: result)
    }

    @Test func everyFieldIsPresentWithItsName() throws {
        let json = try self.report(bound: .calls(6)).json()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(
            Set(object.keys) == [
                "workload", "unit", "target", "connections", "concurrency", "duration_limit_seconds", "call_limit",
                "calls", "ok", "failed", "elapsed_seconds", "calls_per_second", "ok_per_second", "latency_us",
                "errors", "error_samples", "warnings",
            ]
        )
        #expect(object["duration_limit_seconds"] is NSNull)
        #expect(object["call_limit"] as? Int == 6)
        #expect(object["calls"] as? Int == 6)
        #expect(object["ok"] as? Int == 5)
        #expect(object["failed"] as? Int == 1)
        #expect(object["calls_per_second"] as? Double == 3)
        #expect(object["ok_per_second"] as? Double == 2.5)
        #expect((object["errors"] as? [String: Int]) == ["UNAVAILABLE": 1])
        let latency = try #require(object["latency_us"] as? [String: Any])
        #expect(Set(latency.keys) == ["min", "mean", "p50", "p90", "p99", "p99_9", "max"])
        #expect(latency["p50"] as? Int == 300)
        #expect((latency["max"] as? Int).map { (5000...5010).contains($0) } == true)
        #expect(!json.contains("\n"))
    }

    @Test func theJSONRoundTrips() throws {
        let report = self.report(bound: .duration(.seconds(10)))
        let decoded = try JSONDecoder().decode(Report.self, from: Data(try report.json().utf8))
        #expect(decoded == report)
        #expect(decoded.durationLimitSeconds == 10)
        #expect(decoded.callLimit == nil)
    }

    @Test func mergedRecordersAddUp() {
        var first = LatencyRecorder()
        first.recordSuccess(.milliseconds(1))
        first.recordFailure(status: "INTERNAL", message: "a")
        var second = LatencyRecorder()
        second.recordSuccess(.milliseconds(3))
        second.recordFailure(status: "INTERNAL", message: "b")
        first.merge(second)
        #expect(first.callCount == 4)
        #expect(first.errors == ["INTERNAL": 2])
        #expect(first.errorSamples == ["INTERNAL": "a"])
    }
}
