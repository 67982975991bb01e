/// What a run measured, before it is rendered.
public struct LoadResult: Sendable {
    public var recorder: LatencyRecorder
    /// From the first call to the last answer.
    public var elapsed: Duration
    /// Things a reader of the figures should know (e.g. more calls in flight than the server allows).
    public var warnings: [String]

    public init(recorder: LatencyRecorder, elapsed: Duration, warnings: [String] = []) {
        self.recorder = recorder
        self.elapsed = elapsed
        self.warnings = warnings
    }
}
