/// The prepared statements of one session, without libpq: under which name each statement is prepared, when the cache
/// is full, and which statements to deallocate. `PostgresConnection` asks it before each statement and does what it
/// says (prepare, reuse, deallocate), then reports what happened; the unit tests drive it with plain values.
///
/// Two caches share one counter of names (`vpp_1`, `vpp_2`, …), so no name is used twice in a session:
/// - **Session statements** (`execute`, `executePipelined`), by SQL text and parameter types. Statements live as long
///   as the session; past `sessionLimit`, the next new statement starts over with `DEALLOCATE ALL` (only outside a
///   transaction), which empties both caches.
/// - **Scoped statements** (`executeScopedReads`), prepared once per scope as well: PostgreSQL plans a statement for
///   the search path it was prepared under and plans it again whenever it runs under another, so a statement shared by
///   many scopes would be planned again on almost every read. Past `scopedLimit`, the least recently used quarter is
///   deallocated.
struct StatementCache {
    /// A statement: its SQL text and the types of its parameters.
    struct Key: Hashable {
        var sql: String
        var types: [UInt32]
    }

    /// A statement of scoped reads in one scope.
    struct ScopedKey: Hashable {
        var scope: String
        var statement: Key
    }

    /// What to do for a session statement.
    enum Decision: Equatable {
        /// It is prepared already, under this name.
        case reuse(String)
        /// Prepare it under this name (and report `prepared(_:as:)` once it is). When `deallocatingAllFirst`, the cache
        /// is full: send `DEALLOCATE ALL` first, and report `deallocatedAll()` once it succeeded.
        case prepare(String, deallocatingAllFirst: Bool)
    }

    /// Scoped statements to deallocate before a batch (`eviction(makingRoomFor:sessionIsIdle:)`).
    struct Eviction: Equatable {
        /// The names to `DEALLOCATE`, least recently used first.
        var names: [String]
        fileprivate var keys: [ScopedKey]
    }

    private struct ScopedStatement {
        var name: String
        var lastUse: Int
    }

    /// Past this many session statements, the cache starts over.
    let sessionLimit: Int
    /// Past this many scoped statements, the least recently used quarter is deallocated.
    let scopedLimit: Int
    private var session: [Key: String] = [:]
    private var scoped: [ScopedKey: ScopedStatement] = [:]
    private var counter = 0
    /// Counts the uses of scoped statements: a statement's last use orders the evictions.
    private var scopedUses = 0

    init(sessionLimit: Int = 512, scopedLimit: Int = 2048) {
        precondition(sessionLimit > 0 && scopedLimit >= 4, "a statement cache needs room")
        self.sessionLimit = sessionLimit
        self.scopedLimit = scopedLimit
    }

    var sessionCount: Int { session.count }
    var scopedCount: Int { scoped.count }

    /// A name not used before in this session.
    mutating func newName() -> String {
        counter += 1
        return "vpp_\(counter)"
    }

    /// Whether a statement that failed with `sqlState` must be prepared afresh next time: it is gone (26000), or its
    /// cached plan no longer fits its tables (0A000, after a migration changed them).
    static func invalidatesStatement(sqlState: String?) -> Bool {
        sqlState == "0A000" || sqlState == "26000"
    }

    /// `DEALLOCATE ALL` succeeded: nothing is prepared any more.
    mutating func deallocatedAll() {
        session.removeAll()
        scoped.removeAll()
    }

    // MARK: Session statements

    /// How to run a session statement. `sessionIsIdle`: the session is outside any transaction, where
    /// `DEALLOCATE ALL` may run.
    mutating func statement(_ key: Key, sessionIsIdle: Bool) -> Decision {
        if let name = session[key] { return .reuse(name) }
        return .prepare(newName(), deallocatingAllFirst: session.count >= sessionLimit && sessionIsIdle)
    }

    /// The statement is prepared under `name`.
    mutating func prepared(_ key: Key, as name: String) {
        session[key] = name
    }

    /// The statement is not prepared (any more): the next use prepares it afresh.
    mutating func forget(_ key: Key) {
        session[key] = nil
    }

    // MARK: Scoped statements

    /// Before a batch that may prepare up to `count` new scoped statements: the least recently used quarter of them,
    /// to deallocate, if the batch could take the cache past its limit and the session is outside a transaction.
    /// Report `evicted(_:)` once deallocated.
    func eviction(makingRoomFor count: Int, sessionIsIdle: Bool) -> Eviction? {
        guard scoped.count + count > scopedLimit, sessionIsIdle else { return nil }
        let oldest = scoped.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(scopedLimit / 4)
        return Eviction(names: oldest.map(\.value.name), keys: oldest.map(\.key))
    }

    /// The statements of `eviction` are deallocated.
    mutating func evicted(_ eviction: Eviction) {
        for key in eviction.keys { scoped[key] = nil }
    }

    /// A scoped read uses its statement: its name if prepared in its scope already (which counts as its latest use).
    mutating func useScoped(_ key: ScopedKey) -> String? {
        scopedUses += 1
        guard let name = scoped[key]?.name else { return nil }
        scoped[key]?.lastUse = scopedUses
        return name
    }

    /// The scoped statement is prepared under `name` (its latest use: now).
    mutating func preparedScoped(_ key: ScopedKey, as name: String) {
        scoped[key] = ScopedStatement(name: name, lastUse: scopedUses)
    }

    /// The scoped statement is not prepared (any more): the next read prepares it afresh.
    mutating func forgetScoped(_ key: ScopedKey) {
        scoped[key] = nil
    }
}
