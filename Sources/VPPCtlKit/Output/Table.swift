import Foundation

/// A column of a human table: its header and the dotted JSON path of its value in each row.
public struct Column: Sendable {
    public var header: String
    public var path: String

    public init(_ header: String, _ path: String) {
        self.header = header
        self.path = path
    }
}

/// An aligned text table: columns padded to their widest cell, numbers right-aligned, two spaces between columns.
public struct Table: Sendable {
    public var headers: [String]
    public var rows: [[String]]

    public init(headers: [String], rows: [[String]]) {
        self.headers = headers
        self.rows = rows
    }

    /// Rows from JSON values, one per item, one cell per column.
    public init(columns: [Column], items: [JSONValue]) {
        self.headers = columns.map(\.header)
        self.rows = items.map { item in columns.map { HumanFormat.cell(item.at(path: $0.path)) } }
    }

    /// The table's lines without a trailing newline; the header is bold when `colour` is on.
    public func render(colour: Bool = false) -> String {
        let count = self.headers.count
        var widths = self.headers.map(\.count)
        for row in self.rows {
            for (index, cell) in row.prefix(count).enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        // A column is numeric when it holds at least one number and nothing but numbers, "-" and "unlimited".
        let numeric = (0..<count).map { index in
            let cells = self.rows.map { index < $0.count ? $0[index] : "" }
            return cells.contains { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
                && cells.allSatisfy { $0 == "-" || $0 == "unlimited" || (!$0.isEmpty && $0.allSatisfy(\.isNumber)) }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for index in 0..<count {
                let cell = index < cells.count ? cells[index] : ""
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                parts.append(numeric[index] ? padding + cell : (index == count - 1 ? cell : cell + padding))
            }
            return parts.joined(separator: "  ")
        }
        var header = line(self.headers)
        if colour { header = Terminal.bold(header) }
        return ([header] + self.rows.map(line)).joined(separator: "\n")
    }
}

/// How values look to a person: `-` for nothing, dates without the seconds' noise, yes/no.
public enum HumanFormat {
    public static func cell(_ value: JSONValue?) -> String {
        switch value {
        case nil, .null: return "-"
        case .bool(let flag): return flag ? "yes" : "no"
        case .int(let number): return String(number)
        // Apple reports free apps' counts as 2147483647 (catalog.proto): "unlimited" to a person.
        case .uint(let number): return number == 2_147_483_647 ? "unlimited" : String(number)
        case .string(let text):
            if text.isEmpty { return "-" }
            return self.isTimestamp(text) ? self.shortTime(text) : text
        case .array(let values): return values.isEmpty ? "-" : values.map { self.cell($0) }.joined(separator: ", ")
        case .object:
            return value!.rendered().split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(
                separator: " "
            )
        }
    }

    /// `2026-11-24T22:12:26Z`: the only strings ProtoJSON makes that look like this.
    static func isTimestamp(_ text: String) -> Bool {
        let characters = Array(text)
        guard characters.count == 20, characters[4] == "-", characters[10] == "T", characters[19] == "Z" else {
            return false
        }
        return true
    }

    /// `2026-11-24T22:12:26Z` → `2026-11-24 22:12 UTC`.
    static func shortTime(_ text: String) -> String {
        let characters = Array(text)
        return String(characters[0..<10]) + " " + String(characters[11..<16]) + " UTC"
    }

    /// A record as `key: value` lines, nested messages flattened (`last_sync.result`), lists of messages as tables.
    public static func record(_ value: JSONValue, colour: Bool = false) -> String {
        var pairs: [(String, String)] = []
        var tables: [(String, [JSONValue])] = []
        func walk(_ value: JSONValue, prefix: String) {
            guard case .object(let fields) = value else { return }
            for field in fields {
                let key = prefix.isEmpty ? field.key : prefix + "." + field.key
                switch field.value {
                case .object: walk(field.value, prefix: key)
                case .array(let items)
                where items.contains(where: { if case .object = $0 { return true } else { return false } }):
                    tables.append((key, items))
                default: pairs.append((key, self.cell(field.value)))
                }
            }
        }
        walk(value, prefix: "")
        let width = pairs.map(\.0.count).max() ?? 0
        var lines = pairs.map { key, cell in
            let label = key + ":" + String(repeating: " ", count: width - key.count)
            return (colour ? Terminal.bold(label) : label) + "  " + cell
        }
        for (key, items) in tables {
            lines.append("")
            lines.append((colour ? Terminal.bold(key) : key) + ":")
            let columns = self.scalarColumns(of: items)
            lines.append(Table(columns: columns, items: items).render(colour: colour))
        }
        return lines.joined(separator: "\n")
    }

    /// Every scalar field of the first item, as columns (for lists without a chosen set).
    static func scalarColumns(of items: [JSONValue]) -> [Column] {
        guard case .object(let fields)? = items.first else { return [] }
        return fields.compactMap { field in
            switch field.value {
            case .object, .array: return nil
            default: return Column(field.key.uppercased(), field.key)
            }
        }
    }
}
