import Foundation

/// `timestamptz` text in and out without DateFormatter (slow, and locale-dependent), for the
/// session settings fixed at connect time: `DateStyle=ISO`, `TimeZone=UTC`.
enum PostgresTimestamp {
    /// `2024-02-29 13:45:07.123456+00`, rounded to the microsecond.
    static func format(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var days = micros / 86_400_000_000
        var microOfDay = micros % 86_400_000_000
        if microOfDay < 0 {
            microOfDay += 86_400_000_000
            days -= 1
        }
        let (year, month, day) = civil(fromDays: days)
        let seconds = microOfDay / 1_000_000
        let fraction = microOfDay % 1_000_000
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        // Years before 1 AD are written with the BC suffix PostgreSQL expects.
        let yearText = year > 0 ? pad(year, 4) : pad(1 - year, 4)
        var text = "\(yearText)-\(pad(month, 2))-\(pad(day, 2)) "
        text += "\(pad(seconds / 3600, 2)):\(pad(seconds / 60 % 60, 2)):\(pad(seconds % 60, 2)).\(pad(fraction, 6))+00"
        if year <= 0 { text += " BC" }
        return text
    }

    /// Parses `YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM[:SS]]][ BC]`, and `infinity`/`-infinity`.
    static func parse(_ text: Substring) -> Date? {
        if text == "infinity" { return .distantFuture }
        if text == "-infinity" { return .distantPast }
        var bytes = Array(text.utf8)
        var bc = false
        if bytes.count > 3, bytes.suffix(3) == Array(" BC".utf8) {
            bc = true
            bytes.removeLast(3)
        }
        var index = 0
        func number(_ minDigits: Int, _ maxDigits: Int = 0) -> Int64? {
            var value: Int64 = 0
            var count = 0
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57, maxDigits == 0 || count < maxDigits {
                value = value * 10 + Int64(bytes[index] - 48)
                index += 1
                count += 1
            }
            return count >= minDigits ? value : nil
        }
        func expect(_ c: Character) -> Bool {
            guard index < bytes.count, bytes[index] == c.asciiValue else { return false }
            index += 1
            return true
        }
        guard var year = number(4), expect("-"), let month = number(2, 2), expect("-"), let day = number(2, 2),
            expect(" "), let hour = number(2, 2), expect(":"), let minute = number(2, 2), expect(":"),
            let second = number(2, 2)
        else { return nil }
        var micros: Int64 = 0
        if expect(".") {
            let start = index
            guard let fraction = number(1, 6) else { return nil }
            var scaled = fraction
            for _ in 0..<(6 - (index - start)) { scaled *= 10 }
            micros = scaled
        }
        var offsetSeconds: Int64 = 0
        if index < bytes.count {
            let sign: Int64
            if expect("+") { sign = 1 } else if expect("-") { sign = -1 } else { return nil }
            guard let offsetHours = number(2, 2) else { return nil }
            var offset = offsetHours * 3600
            if expect(":") {
                guard let minutes = number(2, 2) else { return nil }
                offset += minutes * 60
                if expect(":") {
                    guard let seconds = number(2, 2) else { return nil }
                    offset += seconds
                }
            }
            offsetSeconds = sign * offset
        }
        guard index == bytes.count, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60,
            second < 61
        else { return nil }
        if bc { year = 1 - year }
        let days = days(fromCivil: year, month, day)
        let totalMicros =
            (days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds) * 1_000_000 + micros
        // Two steps keep microsecond values exact in the Double.
        return Date(timeIntervalSince1970: Double(totalMicros / 1_000_000) + Double(totalMicros % 1_000_000) / 1e6)
    }

    // Howard Hinnant's days-from-civil algorithms (proleptic Gregorian calendar).
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
