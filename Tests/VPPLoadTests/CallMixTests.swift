import Foundation
import Testing

@testable import VPPLoadKit

@Suite("vpp-load mix: weights and the order of calls")
struct CallMixTests {
    @Test func weightsParseIntoTheirCalls() throws {
        let mix = try CallMix.parse("ping=1,counts=6,apps=2,assign=1")
        #expect(mix.weights == [.ping: 1, .counts: 6, .apps: 2, .assign: 1])
        #expect(mix.description == "ping=1,counts=6,apps=2,assign=1")
        #expect(mix.needsTenantData)
    }

    @Test func aPeriodHoldsEachCallAsOftenAsItsWeight() throws {
        let mix = try CallMix.parse("assign=1, counts=6 ,ping=1,apps=2")
        #expect(mix.schedule.count == 10)
        for (call, weight) in mix.weights {
            #expect(mix.schedule.filter { $0 == call }.count == weight)
        }
    }

    @Test func heavyCallsAreSpreadOutNotBunched() throws {
        let mix = try CallMix.parse("counts=6,ping=1,apps=2,assign=1")
        // Smooth weighted round-robin never puts more than two of the 6-weight call in a row here, and the light
        // calls are not all at one end.
        var longestRun = 0
        var run = 0
        for call in mix.schedule {
            run = call == .counts ? run + 1 : 0
            longestRun = max(longestRun, run)
        }
        #expect(longestRun <= 2)
        #expect(mix.schedule.first == .counts)
        #expect(mix.call(at: 10) == mix.call(at: 0))
    }

    @Test func zeroWeightsAreDroppedAndPingAloneNeedsNoTenants() throws {
        let mix = try CallMix.parse("ping=3,counts=0")
        #expect(mix.weights == [.ping: 3])
        #expect(mix.schedule == [.ping, .ping, .ping])
        #expect(!mix.needsTenantData)
    }

    @Test(arguments: ["", "counts=0", "reads=1", "counts", "counts=-1", "counts=x", "counts=1,counts=2", "ping=1001"])
    func badWeightsAreRefused(text: String) {
        #expect(throws: CallMixError.self) { try CallMix.parse(text) }
    }

    @Test func mixCommandChecksItsOptions() throws {
        #expect(throws: (any Error).self) {
            _ = try MixCommand.parse(["--api-key", "k", "--weights", "bogus=1"])
        }
        #expect(throws: (any Error).self) {
            _ = try MixCommand.parse(["--api-key", "k", "--in-flight", "4", "--concurrency", "64"])
        }
        let command = try MixCommand.parse([
            "--api-key", "k", "--connections", "1000", "--concurrency", "64", "--calls", "10",
        ])
        let plan = try command.shape.plan(callTimeout: .seconds(1))
        #expect(plan.spreadCalls)
        #expect(plan.concurrency == 64)
        #expect(plan.connections == 1000)
        #expect(plan.bound == .calls(10))
        let perConnection = try MixCommand.parse(["--api-key", "k", "--connections", "4", "--in-flight", "8"])
        #expect(try perConnection.shape.plan(callTimeout: .seconds(1)).concurrency == 32)
        #expect(try !perConnection.shape.plan(callTimeout: .seconds(1)).spreadCalls)
    }
}

@Suite("vpp-load idle: the server's memory")
struct IdleReportTests {
    @Test func residentMemoryIsReadFromProcStatus() throws {
        let status = "Name:\tvppd\nVmPeak:\t  900000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   80000 kB\nThreads:\t8\n"
        let memory = try #require(ProcessMemory(status: status))
        #expect(memory.residentKB == 80000)
        #expect(memory.peakResidentKB == 81234)
        #expect(ProcessMemory(status: "Name:\tx\n") == nil)
    }

    @Test func theJSONHasStableFieldNames() throws {
        let report = IdleReport(
            connections: 1000,
            connectSeconds: 1.5,
            holdSeconds: 10,
            serverRSSBeforeKB: nil,
            serverRSSKB: 90000,
            serverHWMKB: 91000
        )
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        #expect(
            Set(object.keys) == [
                "connections", "connect_seconds", "hold_seconds", "server_rss_before_kb", "server_rss_kb",
                "server_hwm_kb",
            ]
        )
        #expect(object["server_rss_before_kb"] is NSNull)
        #expect(object["server_rss_kb"] as? Int == 90000)
    }
}
