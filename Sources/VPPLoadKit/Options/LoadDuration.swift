import Foundation

/// Parses the durations the command line takes: a number and a unit, `500ms`, `10s`, `2m`, `1h`; a bare number is
/// seconds.
public enum LoadDuration {
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            guard let value = Double(trimmed.dropLast(unit.suffix.count)), value.isFinite, value >= 0 else {
                return nil
            }
            return .milliseconds(Int64((value * unit.seconds * 1000).rounded()))
        }
        guard let value = Double(trimmed), value.isFinite, value >= 0 else { return nil }
        return .milliseconds(Int64((value * 1000).rounded()))
    }
}
