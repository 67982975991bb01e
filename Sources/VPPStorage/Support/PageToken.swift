import Foundation

/// An opaque cursor for keyset paging: the sort key of the last row of a page. Clients see base64url text; a token
/// this server did not issue answers INVALID_ARGUMENT.
public struct PageToken: Sendable, Hashable {
    public var values: [String]

    public init(_ values: [String]) {
        self.values = values
    }

    public var encoded: String {
        let text = "v1\u{1F}" + self.values.joined(separator: "\u{1F}")
        return Data(text.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes a client's token; nil for an empty one (the first page).
    public static func decode(_ token: String, fields: Int) throws -> PageToken? {
        if token.isEmpty { return nil }
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard token.count <= 1024, let data = Data(base64Encoded: base64),
            let text = String(data: data, encoding: .utf8)
        else {
            throw StorageError.invalidArgument(
                "page_token is not a token this server issued.",
                field: "page.page_token"
            )
        }
        let parts = text.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        guard parts.first == "v1", parts.count == fields + 1 else {
            throw StorageError.invalidArgument(
                "page_token is not a token this server issued.",
                field: "page.page_token"
            )
        }
        return PageToken(Array(parts.dropFirst()))
    }

    /// The page size to use: the request's, or the default, capped at the maximum.
    public static func pageSize(_ requested: UInt32, default defaultSize: Int = 100, maximum: Int = 1000) -> Int {
        requested == 0 ? defaultSize : min(Int(requested), maximum)
    }
}
