import CLibPQ
import Foundation

/// One libpq connection. With `PostgresListener`'s use of it, the only type that touches libpq.
///
/// Every method blocks; callers run them on threads that exist for blocking work and use a
/// connection from one thread at a time (libpq's rule). The pool guarantees this by leasing a
/// connection to one caller at a time, which is why the type can be `@unchecked Sendable`.
///
/// By concern, in files of their own:
/// - this file: opening, closing and checking the connection;
/// - `+Results`: a libpq result as `PostgresRows`, or as a `PostgresError`;
/// - `+Query`: one statement (prepared once per SQL text, `StatementCache`) and SQL scripts;
/// - `+Pipeline`: a transaction's statements in one round trip (`PostgresPool.pipelinedRead`);
/// - `+ScopedReads`: batches of scoped reads in one round trip, as `ScopedReadPlanner` plans them;
/// - `+Copy`: `COPY … FROM STDIN`;
/// - `+Notifications`: what `PostgresListener` reads.
final class PostgresConnection: @unchecked Sendable {
    /// The libpq connection; `nil` once closed. Used by the connection's own extensions only.
    private(set) var conn: OpaquePointer?
    /// The statements prepared on this session (session-wide and per scope).
    var statements = StatementCache()

    /// The server process serving this session (for logs and `pg_terminate_backend` in tests).
    let backendPID: Int32

    /// The scope this session runs in outside transactions (`SessionScope`). Written only by the connection's lessee;
    /// read by the pool under its lock while the connection is free.
    var sessionScope: SessionScope = .none

    /// How many reads of the last `executeScopedReads` sent their `enter` statements.
    var lastBatchEntries = 0

    private init(conn: OpaquePointer) {
        self.conn = conn
        self.backendPID = PQbackendPID(conn)
        // Without this, libpq prints every NOTICE to stderr.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
    }

    deinit { close() }

    /// Opens a connection with `PQconnectdbParams`: keywords and values go to libpq as separate
    /// arrays, so no value is ever parsed as part of a connection string.
    static func connect(_ configuration: PostgresConfiguration) throws(PostgresError) -> PostgresConnection {
        let parameters = configuration.connectionParameters
        let keywords = parameters.map { strdup($0.keyword) }
        let values = parameters.map { strdup($0.value) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let keywordArray: [UnsafePointer<CChar>?] = keywords.map { UnsafePointer($0) } + [nil]
        let valueArray: [UnsafePointer<CChar>?] = values.map { UnsafePointer($0) } + [nil]
        guard let conn = PQconnectdbParams(keywordArray, valueArray, 0) else {
            throw .connectionFailure("libpq could not allocate a connection", sqlState: "08001")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = errorMessage(conn)
            PQfinish(conn)
            throw .connectionFailure(message, sqlState: "08001")
        }
        return PostgresConnection(conn: conn)
    }

    /// Closes the connection; later calls fail with `connectionFailure`.
    func close() {
        if let conn {
            PQfinish(conn)
            self.conn = nil
        }
    }

    var isClosed: Bool { conn == nil }

    /// Whether the connection is known to be unusable (closed, or libpq saw it break).
    var isBroken: Bool {
        guard let conn else { return true }
        return PQstatus(conn) == CONNECTION_BAD
    }

    /// Checks an idle connection before it is leased: if the server closed it (restart,
    /// `pg_terminate_backend`, idle timeout), the socket is readable, and reading finds the end.
    /// Costs one `poll` with a zero timeout when the connection is fine.
    func checkIdleConnection() -> Bool {
        guard let conn, PQstatus(conn) == CONNECTION_OK else { return false }
        // A terminated backend sends a FATAL message and then closes the socket; libpq reads
        // the message in one call and notices the end of the stream only in the next, so read
        // until nothing more is waiting.
        for _ in 0..<8 {
            var descriptor = pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 0) > 0 else { break }
            // Anything arriving on an idle session is a server-side message (a FATAL before
            // closing, or a stray notification); consuming it updates the status.
            if PQconsumeInput(conn) == 0 { return false }
            while let notification = PQnotifies(conn) { PQfreemem(notification) }
            if PQstatus(conn) != CONNECTION_OK { return false }
        }
        return PQstatus(conn) == CONNECTION_OK
    }

    enum TransactionStatus { case idle, active, inTransaction, failedTransaction, unknown }

    var transactionStatus: TransactionStatus {
        guard let conn else { return .unknown }
        switch PQtransactionStatus(conn) {
        case PQTRANS_IDLE: return .idle
        case PQTRANS_ACTIVE: return .active
        case PQTRANS_INTRANS: return .inTransaction
        case PQTRANS_INERROR: return .failedTransaction
        default: return .unknown
        }
    }

    func liveConnection() throws(PostgresError) -> OpaquePointer {
        guard let conn else { throw .connectionFailure("the connection is closed", sqlState: "08003") }
        return conn
    }
}
