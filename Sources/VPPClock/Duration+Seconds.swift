extension Duration {
    /// The duration in seconds, as a `Double` (Foundation's `TimeInterval`, a metric's value, a JSON report's field).
    public var inSeconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
