public import ArgumentParser
import Foundation
public import VPPProto

/// `--json`: shared by every command that prints.
public struct OutputOptions: ParsableArguments, Sendable {
    @Flag(help: "Print one JSON document (stable snake_case field names, as in Protos/) instead of text.")
    public var json = false

    public init() {}
}

/// Prints a command's result: a table or `key: value` lines for people, one JSON document for scripts. Progress and
/// advice go to stderr, so stdout holds only the result.
public struct Printer: Sendable {
    public var json: Bool
    public var colour: Bool

    public init(json: Bool, colour: Bool) {
        self.json = json
        self.colour = colour
    }

    static func standard(_ options: OutputOptions) -> Printer {
        Printer(
            json: options.json,
            colour: Terminal.colourAllowed(
                isTerminal: Terminal.isTerminal(1),
                environment: ProcessInfo.processInfo.environment
            )
        )
    }

    /// One message: `key: value` lines, or its JSON.
    public func record(_ message: some ProtoMessage, headline: String? = nil) {
        let value = ProtoJSON.encode(message)
        print(self.renderRecord(value, headline: headline))
    }

    func renderRecord(_ value: JSONValue, headline: String? = nil) -> String {
        if self.json { return value.rendered() }
        let body = HumanFormat.record(value, colour: self.colour)
        guard let headline else { return body }
        return headline + "\n" + body
    }

    /// A list response: a table of its `items` field, or the whole response as JSON (items and `page`).
    public func list(_ response: some ProtoMessage, items: String, columns: [Column], empty: String) {
        print(self.renderList(ProtoJSON.encode(response), items: items, columns: columns, empty: empty))
        if !self.json, let next = ProtoJSON.encode(response).at(path: "page.next_page_token")?.stringValue,
            !next.isEmpty
        {
            Terminal.writeError("More on the next page: add --page-token \(next)\n")
        }
    }

    func renderList(_ value: JSONValue, items: String, columns: [Column], empty: String) -> String {
        if self.json { return value.rendered() }
        guard case .array(let rows)? = value[items], !rows.isEmpty else { return empty }
        return Table(columns: columns, items: rows).render(colour: self.colour)
    }

    /// A result that is a sentence for people and a document for scripts.
    public func result(_ sentence: String, json value: JSONValue) {
        print(self.json ? value.rendered() : sentence)
    }

    /// Advice for people (stderr), silent under --json so scripts see only errors there.
    public func note(_ text: String) {
        if !self.json { Terminal.writeError(text + "\n") }
    }
}

/// `--page-size` and `--page-token` for list commands.
public struct PageOptions: ParsableArguments, Sendable {
    @Option(help: "How many to list (1 to 1000).")
    public var pageSize: UInt32 = 100

    @Option(help: "Continue a list from where the last page ended (the token it printed).")
    public var pageToken: String?

    public init() {}

    public mutating func validate() throws {
        guard (1...1000).contains(self.pageSize) else { throw ValidationError("--page-size must be 1 to 1000.") }
    }

    var request: VppV1.PageRequest {
        VppV1.PageRequest(pageSize: self.pageSize, pageToken: self.pageToken ?? "")
    }
}
