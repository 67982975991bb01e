import CLibPQ
import Foundation

/// What `PostgresListener` uses: the socket to wait on, and the notifications that arrived.
extension PostgresConnection {
    /// The connection's socket, or -1 once closed.
    var socket: Int32 {
        guard let conn else { return -1 }
        return PQsocket(conn)
    }

    /// Reads what the server sent and returns the notifications among it.
    func consumeNotifications() throws(PostgresError) -> [PostgresNotification] {
        let conn = try liveConnection()
        guard PQconsumeInput(conn) == 1 else { throw currentConnectionError() }
        var notifications: [PostgresNotification] = []
        while let notify = PQnotifies(conn) {
            let channel = String(cString: notify.pointee.relname)
            let payload = notify.pointee.extra.map { String(cString: $0) } ?? ""
            notifications.append(PostgresNotification(channel: channel, payload: payload))
            PQfreemem(notify)
        }
        if PQstatus(conn) == CONNECTION_BAD { throw currentConnectionError() }
        return notifications
    }
}
