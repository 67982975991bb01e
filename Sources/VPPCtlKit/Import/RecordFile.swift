public import Foundation
import VPPProto

/// Rows read from a CSV or JSON file for a bulk call: `users import`, `devices import`, `groups add-members --file`,
/// `licenses report`. Columns are the proto's field names (`external_id`, `serial_number`, ...), so the files match
/// `--json` output and Protos/.
///
/// - CSV: a header row, then one row per entry; RFC 4180 quoting (`"a, b"`, `""` for a quote).
/// - JSON: an array of objects, or an object holding one array (e.g. the output of `vppctl users list --json`).
public struct RecordFile: Sendable {
    public struct Row: Sendable, Equatable {
        /// Where the row is, for messages: "line 3" or "entry 2".
        public var location: String
        public var fields: [String: String]
    }

    public var path: String
    /// The CSV header's names (empty for JSON, whose rows name their own fields).
    public var columns: [String]
    public var rows: [Row]

    public init(path: String, columns: [String] = [], rows: [Row]) {
        self.path = path
        self.columns = columns
        self.rows = rows
    }

    static let formatHint = "Give a .csv file with a header row or a .json file holding an array of objects"

    /// Reads and parses a file by its extension (.csv or .json; anything else is tried as JSON when it starts with
    /// `[` or `{`, else as CSV).
    public static func load(path: String, allowed: Set<String>) throws(CtlError) -> RecordFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CtlError.badInput(
                "cannot read \(path)" + (FileManager.default.fileExists(atPath: path) ? "" : ": no such file"),
                hint: Self.formatHint + " with the columns " + allowed.sorted().joined(separator: ", ") + "."
            )
        }
        let text = String(decoding: data, as: UTF8.self)
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let isJSON =
            path.lowercased().hasSuffix(".json")
            || (!path.lowercased().hasSuffix(".csv") && (trimmed.hasPrefix("[") || trimmed.hasPrefix("{")))
        let file = isJSON ? try Self.parseJSON(data, path: path) : try Self.parseCSV(text, path: path)
        let named =
            [(location: "line 1", names: file.columns)] + file.rows.map { ($0.location, $0.fields.keys.sorted()) }
        for (location, names) in named {
            if let unknown = names.first(where: { !$0.isEmpty && !allowed.contains($0) }) {
                throw CtlError.badInput(
                    "\(path), \(location): unknown column \"\(unknown)\"",
                    hint: "The columns are: " + allowed.sorted().joined(separator: ", ") + "."
                )
            }
        }
        guard !file.rows.isEmpty else {
            throw CtlError.badInput("\(path) holds no entries", hint: Self.formatHint + ", one entry per row.")
        }
        return file
    }

    public static func parseCSV(_ text: String, path: String) throws(CtlError) -> RecordFile {
        var records: [(line: Int, cells: [String])] = []
        var cells: [String] = []
        var cell = ""
        var quoted = false
        var line = 1
        var recordLine = 1
        var characters = Array(text.replacingOccurrences(of: "\r\n", with: "\n"))[...]
        if characters.first == "\u{FEFF}" { characters = characters.dropFirst() }  // a spreadsheet's byte-order mark
        var index = characters.startIndex
        func endRecord() {
            cells.append(cell)
            cell = ""
            if !(cells.count == 1 && cells[0].trimmingCharacters(in: .whitespaces).isEmpty) {
                records.append((recordLine, cells))
            }
            cells = []
        }
        while index < characters.endIndex {
            let character = characters[index]
            if quoted {
                if character == "\"" {
                    if index + 1 < characters.endIndex, characters[index + 1] == "\"" {
                        cell.append("\"")
                        index += 1
                    } else {
                        quoted = false
                    }
                } else {
                    if character == "\n" { line += 1 }
                    cell.append(character)
                }
            } else {
                switch character {
                case "\"" where cell.isEmpty: quoted = true
                case ",":
                    cells.append(cell)
                    cell = ""
                case "\n":
                    endRecord()
                    line += 1
                    recordLine = line
                default: cell.append(character)
                }
            }
            index += 1
        }
        if quoted {
            throw CtlError.badInput(
                "\(path), line \(recordLine): a quoted field is not closed",
                hint: "Close it with \"."
            )
        }
        if !cell.isEmpty || !cells.isEmpty { endRecord() }
        guard let header = records.first else {
            throw CtlError.badInput("\(path) is empty", hint: Self.formatHint + ".")
        }
        let names = header.cells.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        var rows: [Row] = []
        for record in records.dropFirst() {
            guard record.cells.count == names.count else {
                throw CtlError.badInput(
                    "\(path), line \(record.line): \(record.cells.count) fields where the header has \(names.count)",
                    hint: "Quote fields that contain commas (\"Smith, Anna\")."
                )
            }
            var fields: [String: String] = [:]
            for (name, value) in zip(names, record.cells) where !name.isEmpty { fields[name] = value }
            rows.append(Row(location: "line \(record.line)", fields: fields))
        }
        return RecordFile(path: path, columns: names, rows: rows)
    }

    public static func parseJSON(_ data: Data, path: String) throws(CtlError) -> RecordFile {
        let decoder = JSONDecoder()
        var entries: [[String: Scalar]]?
        if let array = try? decoder.decode([[String: Scalar]].self, from: data) {
            entries = array
        } else if let object = try? decoder.decode([String: MaybeEntries].self, from: data) {
            let arrays = object.values.compactMap(\.entries)
            if arrays.count == 1 { entries = arrays[0] }
        } else if (try? JSONSerialization.jsonObject(with: data)) == nil {
            throw CtlError.badInput("\(path) is not valid JSON", hint: Self.formatHint + ".")
        }
        guard let entries else {
            throw CtlError.badInput("\(path) holds no array of objects", hint: Self.formatHint + ".")
        }
        let rows = entries.enumerated().map { number, entry in
            Row(location: "entry \(number + 1)", fields: entry.compactMapValues(\.text))
        }
        return RecordFile(path: path, rows: rows)
    }

    /// A JSON value as an input field's text; nested values (e.g. `created_at` in `users list --json` output) and
    /// nulls are not input fields and read as nil. JSONDecoder keeps booleans apart from numbers.
    struct Scalar: Decodable {
        var text: String?

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self.text = nil
            } else if let flag = try? container.decode(Bool.self) {
                self.text = flag ? "true" : "false"
            } else if let number = try? container.decode(Int64.self) {
                self.text = String(number)
            } else if let number = try? container.decode(Double.self) {
                self.text = String(number)
            } else if let text = try? container.decode(String.self) {
                self.text = text
            } else {
                self.text = nil
            }
        }
    }

    struct MaybeEntries: Decodable {
        var entries: [[String: Scalar]]?

        init(from decoder: any Decoder) throws {
            self.entries = try? decoder.singleValueContainer().decode([[String: Scalar]].self)
        }
    }

    /// `true`, `yes`, `1` / `false`, `no`, `0`, empty (false).
    static func bool(_ text: String?, row: Row, column: String, path: String) throws(CtlError) -> Bool {
        switch (text ?? "").trimmingCharacters(in: .whitespaces).lowercased() {
        case "true", "yes", "1", "y": return true
        case "false", "no", "0", "n", "": return false
        default:
            throw CtlError.badInput(
                "\(path), \(row.location): \(column) is \"\(text ?? "")\", not true or false",
                hint: "Write true or false."
            )
        }
    }
}
