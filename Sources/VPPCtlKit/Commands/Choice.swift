import ArgumentParser
import Foundation

/// A proto enum as a command-line value, spelled in kebab-case without the enum's prefix (`--account-type
/// education`, `--state expiring-soon`); UNSPECIFIED is not offered.
struct Choice<Value: CaseIterable & Hashable & Sendable>: ExpressibleByArgument, Sendable {
    var value: Value

    init(_ value: Value) {
        self.value = value
    }

    init?(argument: String) {
        let wanted = argument.lowercased().replacingOccurrences(of: "-", with: "_")
        guard let value = Value.allCases.first(where: { Self.name($0) == wanted }), wanted != "unspecified" else {
            return nil
        }
        self.value = value
    }

    static func name(_ value: Value) -> String {
        snakeCase(String(describing: value))
    }

    static var allValueStrings: [String] {
        Value.allCases.map(Self.name).filter { $0 != "unspecified" }.map { $0.replacingOccurrences(of: "_", with: "-") }
    }

    var defaultValueDescription: String {
        Self.name(self.value).replacingOccurrences(of: "_", with: "-")
    }
}
