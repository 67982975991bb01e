#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where output goes and whether it may be coloured: only on a terminal, and never when NO_COLOR is set
/// (https://no-color.org) or TERM is "dumb".
public enum Terminal {
    public static func isTerminal(_ fd: Int32) -> Bool {
        isatty(fd) == 1
    }

    public static func colourAllowed(isTerminal: Bool, environment: [String: String]) -> Bool {
        guard isTerminal else { return false }
        if let noColour = environment["NO_COLOR"], !noColour.isEmpty { return false }
        return environment["TERM"] != "dumb"
    }

    static func bold(_ text: String) -> String { "\u{1B}[1m\(text)\u{1B}[0m" }
    static func red(_ text: String) -> String { "\u{1B}[1;31m\(text)\u{1B}[0m" }
    static func green(_ text: String) -> String { "\u{1B}[32m\(text)\u{1B}[0m" }

    /// Writes to stderr without a newline (progress bars redraw in place).
    static func writeError(_ text: String) {
        // What stdout holds so far goes first, so a summary and the refusals under it keep their order in a log
        // that collects both (stdout is block-buffered when it is not a terminal).
        fflush(nil)
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }

    /// The terminal's width in columns: $COLUMNS, or 80. (ioctl is variadic in C and not callable from Swift.)
    static func width(environment: [String: String]) -> Int {
        environment["COLUMNS"].flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil } ?? 80
    }
}
