import Foundation
import VPPPostgres

/// Keyset paging in creation order, `(created_at, id)`: the page token carries the last row's `created_at` in whole
/// microseconds and its id. Queries select `CreationCursor.microsColumn` as their last column and compare with
/// `(created_at, id) > ('epoch'::timestamptz + <micros> * interval '1 microsecond', <id>)`: integer arithmetic, so the
/// comparison is exact (a floating-point round trip could skip or repeat a row).
struct CreationCursor {
    var micros: Int64
    var id: UUID

    /// The SQL expression the queries select last, from which the next token is made.
    static let microsColumn = "(extract(epoch FROM created_at) * 1000000)::bigint"

    /// Reads a client's token; nil for the first page.
    init?(_ token: PageToken?) throws {
        guard let token else { return nil }
        guard token.values.count == 2, let micros = Int64(token.values[0]),
            let id = UUID(canonicalText: token.values[1])
        else {
            throw StorageError.invalidArgument(
                "page_token is not a token this server issued.",
                field: "page.page_token"
            )
        }
        (self.micros, self.id) = (micros, id)
    }

    /// Decodes up to `pageSize` rows (the query asks for one more, to know whether a next page exists) and the token of
    /// the next page. `id` reads a decoded item's id; the micros are the rows' last column.
    static func page<Item>(
        _ rows: PostgresRows,
        pageSize: Int,
        decode: (PostgresRow) throws -> Item,
        id: (Item) -> UUID
    ) throws -> (items: [Item], next: PageToken?) {
        let items = try rows.prefix(pageSize).map(decode)
        guard rows.count > pageSize, let last = items.last else { return (items, nil) }
        let micros = try rows[pageSize - 1].decode(Int64.self, at: rows.columns.count - 1)
        return (items, PageToken(["\(micros)", id(last).uuidString]))
    }
}
