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
    /// API keys the connections take in turn (connection i uses key i mod count), e.g. one per tenant; empty: every
    /// connection uses `client.apiKey`.
    public let apiKeys: [String]

    public init(client: ClientConfiguration, apiKeys: [String] = []) {
        self.client = client
        self.apiKeys = apiKeys
    }

    public func run(_ workload: some Workload, plan: LoadPlan) async throws -> LoadResult {
        precondition(plan.connections >= 1 && plan.concurrency >= 1)
        let clients = (0..<plan.connections).map { index in
            var configuration = self.client
            if !self.apiKeys.isEmpty {
                configuration.apiKey = self.apiKeys[index % self.apiKeys.count]
            }
            return VPPClient(configuration)
        }
        var warnings: [String] = []
        do {
            var serverLimit = 0
            for welcome in try await Self.connectAll(clients, target: "\(self.client.host):\(self.client.port)") {
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
                let connection: Int? = plan.spreadCalls ? nil : task % clients.count
                group.addTask {
                    await Self.callLoop(
                        workload,
                        clients: clients,
                        connection: connection,
                        budget: budget,
                        timeout: plan.callTimeout
                    )
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
            warnings.append(
                "\(recorder.clampedCount) calls took longer than the histogram's range and count as its maximum."
            )
        }
        return LoadResult(recorder: recorder, elapsed: elapsed, warnings: warnings)
    }

    /// One task: a call at a time until the budget says stop, on its own connection or (nil) on connection
    /// index mod count.
    private static func callLoop(
        _ workload: some Workload,
        clients: [VPPClient],
        connection fixed: Int?,
        budget: CallBudget,
        timeout: Duration
    ) async -> LatencyRecorder {
        var recorder = LatencyRecorder()
        while !Task.isCancelled, let index = budget.next() {
            let connection = fixed ?? index % clients.count
            let started = ContinuousClock.now
            do {
                try await workload.call(index, connection: connection, on: clients[connection], timeout: timeout)
                recorder.recordSuccess(ContinuousClock.now - started)
            } catch let error as RPCError {
                recorder.recordFailure(status: error.code.name, message: error.message)
            } catch {
                recorder.recordFailure(status: "CLIENT_ERROR", message: "\(error)")
            }
        }
        return recorder
    }

    /// Connects and authenticates every client, up to 32 at a time (a run of 1,000 connections starts in seconds).
    static func connectAll(_ clients: [VPPClient], target: String) async throws -> [RpcV1.Welcome] {
        try await withThrowingTaskGroup(of: RpcV1.Welcome.self) { group in
            var welcomes: [RpcV1.Welcome] = []
            for (index, client) in clients.enumerated() {
                if index >= 32, let welcome = try await group.next() { welcomes.append(welcome) }
                group.addTask {
                    do {
                        return try await client.connect()
                    } catch {
                        throw LoadError("Could not connect to \(target): \(error)")
                    }
                }
            }
            for try await welcome in group { welcomes.append(welcome) }
            return welcomes
        }
    }

    static func close(_ clients: [VPPClient]) async {
        for client in clients {
            await client.close()
        }
    }
}
