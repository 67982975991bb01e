import Foundation
import Testing
import VPPPostgres
import VPPTesting

@Suite("LISTEN/NOTIFY")
struct ListenerTests {
    @Test func notificationsArriveWithTheirPayloads() async throws {
        try await withTestPool { pool in
            let listener = try PostgresListener(configuration: pool.configuration, channels: ["jobs", "Tenant Events"])
            defer { listener.stop() }
            let events = try await withSafetyTimeout { () -> [PostgresListenerEvent] in
                var iterator = listener.events.makeAsyncIterator()
                var received: [PostgresListenerEvent] = []
                guard let first = await iterator.next() else { return received }
                received.append(first)
                try await pool.notify(channel: "jobs", payload: "hello 'world'; \"quoted\"")
                try await pool.notify(channel: "Tenant Events", payload: "🎉")
                try await pool.notify(channel: "not-listened", payload: "ignored")
                try await pool.notify(channel: "jobs", payload: "")
                for _ in 0..<3 {
                    guard let event = await iterator.next() else { break }
                    received.append(event)
                }
                return received
            }
            #expect(
                events == [
                    .listening,
                    .notification(PostgresNotification(channel: "jobs", payload: "hello 'world'; \"quoted\"")),
                    .notification(PostgresNotification(channel: "Tenant Events", payload: "🎉")),
                    .notification(PostgresNotification(channel: "jobs", payload: "")),
                ]
            )
        }
    }

    @Test func aKilledListenerConnectionReconnectsAndKeepsDelivering() async throws {
        try await withTestPool { pool in
            let listener = try PostgresListener(configuration: pool.configuration, channels: ["jobs"])
            defer { listener.stop() }
            let events = try await withSafetyTimeout { () -> [PostgresListenerEvent] in
                var iterator = listener.events.makeAsyncIterator()
                var received: [PostgresListenerEvent] = []
                guard let first = await iterator.next() else { return received }
                received.append(first)
                try await pool.notify(channel: "jobs", payload: "before")
                if let event = await iterator.next() { received.append(event) }
                let pid = try #require(listener.backendPID)
                try await withAdminPool { admin in try await terminateBackend(pid, using: admin) }
                if let event = await iterator.next() { received.append(event) }
                try await pool.notify(channel: "jobs", payload: "after")
                if let event = await iterator.next() { received.append(event) }
                return received
            }
            #expect(
                events == [
                    .listening,
                    .notification(PostgresNotification(channel: "jobs", payload: "before")),
                    .reconnected,
                    .notification(PostgresNotification(channel: "jobs", payload: "after")),
                ]
            )
        }
    }

    @Test func stoppingTheListenerEndsTheStream() async throws {
        try await withTestPool { pool in
            let listener = try PostgresListener(configuration: pool.configuration, channels: ["jobs"])
            let ended = try await withSafetyTimeout { () -> Bool in
                var iterator = listener.events.makeAsyncIterator()
                _ = await iterator.next()
                listener.stop()
                while await iterator.next() != nil {}
                return true
            }
            #expect(ended)
        }
    }

    @Test func invalidChannelNamesAreRejected() async throws {
        let configuration = PostgresConfiguration(user: "nobody", database: "nowhere")
        #expect(throws: PostgresError.self) { try PostgresListener(configuration: configuration, channels: [""]) }
        #expect(throws: PostgresError.self) {
            try PostgresListener(configuration: configuration, channels: [String(repeating: "x", count: 64)])
        }
        #expect(throws: PostgresError.self) {
            try PostgresListener(configuration: configuration, channels: ["a\u{0}b"])
        }
    }
}
