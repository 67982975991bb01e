/// Why a load run could not start (bad options, server unreachable, wrong key kind). Failed calls during a run are
/// not errors of the run: they are counted in its report.
public struct LoadError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
