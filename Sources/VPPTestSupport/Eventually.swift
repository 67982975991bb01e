/// Waits until `condition` holds, polling every `poll`: for a state another task or process brings about (never for
/// timing measurements). False after `timeout`; a condition that throws counts as not holding yet.
public func eventually(
    timeout: Duration = .seconds(30),
    poll: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return true }
        try? await Task.sleep(for: poll)
    }
    return (try? await condition()) == true
}
