import Testing

@testable import VPPPostgres

/// `PoolStateMachine`'s reconnect backoff and its batching of scoped reads (no server).
@Suite("Pool state machine: reconnect backoff and read batches")
struct PoolStateMachineReadsTests {
    typealias Machine = PoolStateMachine<String, Int, String>

    private static let refused = PostgresError.connectionFailure("connection refused", sqlState: "08001")

    @Test("after a failed attempt, attempts fail at once with its error until the delay has passed")
    func aFailedAttemptHoldsOffTheNext() {
        var machine = Machine(size: 1)
        let start = ContinuousClock.now
        #expect(machine.connectAction(at: start) == .connect)
        #expect(machine.connectFailed(Self.refused, at: start) == .milliseconds(50))
        #expect(machine.connectAction(at: start + .milliseconds(49)) == .fail(Self.refused))
        #expect(machine.connectAction(at: start + .milliseconds(50)) == .connect)
    }

    @Test("the delay doubles from 50 ms with each failure in a row, up to a second, and resets on success")
    func theDelayDoublesAndResets() {
        var machine = Machine(size: 1)
        let start = ContinuousClock.now
        let delays = (0..<7).map { _ in machine.connectFailed(Self.refused, at: start) }
        #expect(delays == [50, 100, 200, 400, 800, 1000, 1000].map { Duration.milliseconds($0) })
        machine.connectSucceeded()
        #expect(machine.connectAction(at: start) == .connect)
        #expect(machine.connectFailed(Self.refused, at: start) == .milliseconds(50))
    }

    @Test("a read starts a runner while fewer than the limit are at work; the others wait for them")
    func runnersStartUpToTheLimit() {
        var machine = Machine(size: 4, readRunnerLimit: 2)
        guard case .startRunner = machine.enqueueRead("r1"), case .startRunner = machine.enqueueRead("r2") else {
            Issue.record("expected two runners")
            return
        }
        guard case .queued = machine.enqueueRead("r3") else {
            Issue.record("expected the third read to wait")
            return
        }
        #expect(machine.readRunners == 2)
        #expect(machine.pendingReadCount == 3)
    }

    @Test("a runner takes the oldest reads, at most a batch, and ends when none is left")
    func batchesAreTakenOldestFirst() {
        var machine = Machine(size: 1, maxReadBatch: 2)
        for read in ["r1", "r2", "r3"] { _ = machine.enqueueRead(read) }
        #expect(machine.nextReadBatch() == ["r1", "r2"])
        #expect(machine.nextReadBatch() == ["r3"])
        #expect(machine.readRunners == 1)
        #expect(machine.nextReadBatch() == nil)
        #expect(machine.readRunners == 0, "the runner ended")
        guard case .startRunner = machine.enqueueRead("r4") else {
            Issue.record("expected a new runner for a read after the last one ended")
            return
        }
    }

    @Test("reads of a batch that did not run go back to the front of the queue, in their order")
    func readsThatDidNotRunAreRequeuedFirst() {
        var machine = Machine(size: 1, maxReadBatch: 2)
        for read in ["r1", "r2", "r3", "r4"] { _ = machine.enqueueRead(read) }
        let batch = machine.nextReadBatch() ?? []
        #expect(batch == ["r1", "r2"])
        machine.requeueReads(batch)
        #expect(machine.nextReadBatch() == ["r1", "r2"])
        #expect(machine.nextReadBatch() == ["r3", "r4"])
    }

    @Test("a runner that cannot get a connection fails one batch and hands the rest to a new runner")
    func aFailingRunnerFailsOneBatch() {
        var machine = Machine(size: 1, maxReadBatch: 2)
        for read in ["r1", "r2", "r3"] { _ = machine.enqueueRead(read) }
        let first = machine.endReadRunner(failingOneBatch: true)
        #expect(first.failing == ["r1", "r2"])
        #expect(first.restart, "r3 needs a runner")
        #expect(machine.readRunners == 1, "the new runner takes the old one's place")
        let second = machine.endReadRunner(failingOneBatch: true)
        #expect(second.failing == ["r3"])
        #expect(!second.restart)
        #expect(machine.readRunners == 0)
    }

    @Test("a runner whose connection broke fails nothing; once the pool is shut down, every queued read fails")
    func shutdownFailsEveryQueuedRead() {
        var machine = Machine(size: 1, maxReadBatch: 2)
        for read in ["r1", "r2", "r3"] { _ = machine.enqueueRead(read) }
        let broken = machine.endReadRunner(failingOneBatch: false)
        #expect(broken.failing.isEmpty)
        #expect(broken.restart)
        _ = machine.shutDown()
        let shutDown = machine.endReadRunner(failingOneBatch: true)
        #expect(shutDown.failing == ["r1", "r2", "r3"])
        #expect(!shutDown.restart)
        guard case .refuse = machine.enqueueRead("r4") else {
            Issue.record("expected a read after shutdown to be refused")
            return
        }
        #expect(machine.pendingReadCount == 0)
    }
}
