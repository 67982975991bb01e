public import VPPClient
import VPPProto
import VPPWire

/// Runs a `Workload` against one server as a `LoadPlan` says, and measures every call.
///
/// Every connection is opened and authenticated before the clock starts, so connection set-up is not in the
/// figures, and a server that cannot be reached ends the run at once instead of producing a flood of errors.
/// Each task records into a `LatencyRecorder` of its own; they are merged once all tasks are done.
public struct LoadRunner: Sendable {
    /// The connection settings every client of the run copies.
    public let client: ClientConfiguration

    public init(client: ClientConfiguration) {
        self.client = client
    }

    public func run(_ workload: some Workload, plan: LoadPlan) async throws -> LoadResult {
        precondition(plan.connections >= 1 && plan.concurrency >= 1)
        let clients = (0..<plan.connections).map { _ in VPPClient(self.client) }
        var warnings: [String] = []
        do {
            var serverLimit = 0
            for client in clients {
                let welcome: RpcV1.Welcome
                do {
                    welcome = try await client.connect()
                } catch {
                    throw LoadError("Could not connect to \(self.client.host):\(self.client.port): \(error)")
                }
                try workload.check(welcome: welcome)
                serverLimit = Int(welcome.maxCallsInFlight)
            }
            if serverLimit > 0, plan.callsInFlightPerConnection > serverLimit {
                warnings.append(
                    "\(plan.callsInFlightPerConnection) calls in flight per connection is more than the server's limit "
                        + "of \(serverLimit): the excess calls fail with RESOURCE_EXHAUSTED."
                )
            }
        } catch {
            await Self.close(clients)
            throw error
        }

        let start = ContinuousClock.now
        let budget = CallBudget(bound: plan.bound, start: start)
        let recorder = await withTaskGroup(of: LatencyRecorder.self) { group in
            for task in 0..<plan.concurrency {
                let client = clients[task % clients.count]
                group.addTask {
                    await Self.callLoop(workload, client: client, budget: budget, timeout: plan.callTimeout)
                }
            }
            var merged = LatencyRecorder()
            for await recorder in group {
                merged.merge(recorder)
            }
            return merged
        }
        let elapsed = ContinuousClock.now - start
        await Self.close(clients)
        if recorder.clampedCount > 0 {
            warnings.append("\(recorder.clampedCount) calls took longer than the histogram's range and count as its maximum.")
        }
        return LoadResult(recorder: recorder, elapsed: elapsed, warnings: warnings)
    }

    /// One task: a call at a time until the budget says stop.
    private static func callLoop(
        _ workload: some Workload,
        client: VPPClient,
        budget: CallBudget,
        timeout: Duration
    ) async -> LatencyRecorder {
        var recorder = LatencyRecorder()
        while !Task.isCancelled, let index = budget.next() {
            let started = ContinuousClock.now
            do {
                try await workload.call(index, on: client, timeout: timeout)
                recorder.recordSuccess(ContinuousClock.now - started)
            } catch let error as RPCError {
                recorder.recordFailure(status: error.code.name, message: error.message)
            } catch {
                recorder.recordFailure(status: "CLIENT_ERROR", message: "\(error)")
            }
        }
        return recorder
    }

    private static func close(_ clients: [VPPClient]) async {
        for client in clients {
            await client.close()
        }
    }
}
