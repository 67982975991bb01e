import Testing
import VPPClock

@Suite("ManualClock and InstantClock")
struct ManualClockTests {
    @Test("A sleep ends when the clock is advanced to its deadline, not before")
    func sleepEndsOnAdvance() async throws {
        let clock = ManualClock()
        let start = clock.now
        let sleeper = Task { try await clock.sleep(until: start + .seconds(10)) }
        try await clock.waitForSleepers(1)
        clock.advance(by: .seconds(9))
        #expect(clock.sleeperCount == 1)
        clock.advance(by: .seconds(1))
        try await sleeper.value
        #expect(clock.sleeperCount == 0)
        #expect(clock.now - start == .seconds(10))
    }

    @Test("A sleep whose deadline passed returns at once; a cancelled sleep throws CancellationError")
    func pastDeadlineAndCancellation() async throws {
        let clock = ManualClock()
        try await clock.sleep(until: clock.now)
        let sleeper = Task { try await clock.sleep(for: .seconds(60)) }
        try await clock.waitForSleepers(1)
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(clock.sleeperCount == 0)
    }

    @Test("Sleeps wake in deadline order, and only those the advance reached")
    func severalSleepers() async throws {
        let clock = ManualClock()
        let start = clock.now
        let first = Task { try await clock.sleep(until: start + .seconds(1)) }
        let second = Task { try await clock.sleep(until: start + .seconds(5)) }
        try await clock.waitForSleepers(2)
        clock.advance(by: .seconds(2))
        try await first.value
        #expect(clock.sleeperCount == 1)
        clock.advance(by: .seconds(3))
        try await second.value
    }

    @Test("InstantClock reads and sleeps on the clock it wraps")
    func erased() async throws {
        let manual = ManualClock()
        let clock = InstantClock(manual)
        #expect(clock.now == manual.now)
        let sleeper = Task { try await clock.sleep(for: .seconds(3)) }
        try await manual.waitForSleepers(1)
        manual.advance(by: .seconds(3))
        try await sleeper.value
        #expect(clock.now == manual.now)
        // The real one moves by itself.
        let before = InstantClock.continuous.now
        try await InstantClock.continuous.sleep(for: .milliseconds(2))
        #expect(InstantClock.continuous.now > before)
    }
}
