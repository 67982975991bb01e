import AppleVPP
import AppleVPPSimulator
import AsyncHTTPClient
import Foundation
import Logging
import VPPLoadKit
import VPPPostgres
import VPPStorage
import VPPServices
import VPPClock

/// Assigns one app (user licensing) to a group of `users` users and times it until every ledger entry and every
/// association for Apple is in the outbox — what the push job then sends (registering the users Apple does not know
/// yet first).
struct AssignBenchmark: SimulatedAppleBenchmark {
    var users: Int
    var runs: Int

    func measure(simulator: AppleVPPSimulator, storage: Storage, http: HTTPClient, logger: Logger) async throws
        -> AssignReport
    {
        try await storage.migrate(concurrency: 2)
        let adamIDs = (0..<self.runs).map { String(3_000_000_000 + $0) }
        simulator.core.addPublicApps(
            adamIDs.map { ContentMetadata(trackId: Int($0)!, trackName: "App \($0)", kind: "software") }
        )
        let location = try simulator.core.createLocation(
            .init(
                locationName: "Assign",
                assets: adamIDs.map { .init(adamId: $0, productType: .app, totalCount: self.users) }
            )
        )
        let (sync, tenantID, tokenID) = try await benchmarkTenant(
            name: "assign",
            simulator: simulator,
            vppToken: location.vppToken,
            storage: storage,
            http: http,
            logger: logger
        )
        _ = try await sync.runner.run(tenantID: tenantID, tokenID: tokenID, jobID: UUID(), full: true) { _, _, _ in }

        // The directory: `users` users in one user group (as the directory's bulk upsert writes them).
        let groupID = UUID()
        try await storage.withTenant(tenantID) { transaction in
            _ = try await transaction.copyIn(
                table: "users",
                columns: ["id", "external_id", "email"],
                rows: (0..<self.users).map { [UUID(), "user-\($0)", "user-\($0)@example.com"] }
            )
            try await transaction.query(
                "INSERT INTO groups (id, external_id, name, kind) VALUES (\(groupID), 'everyone', 'Everyone', 'user')"
            )
            try await transaction.query("INSERT INTO group_users (group_id, user_id) SELECT \(groupID), id FROM users")
        }
        let assets = try await CatalogStore(storage: storage).list(
            tenantID: tenantID,
            productType: "App",
            tokenID: tokenID,
            query: nil,
            onlyAvailable: false,
            pageSize: 1000,
            after: nil
        ).assets

        var runs: [AssignReport.Run] = []
        for asset in assets.prefix(self.runs) {
            let started = ContinuousClock.now
            let assignment = try await sync.ledger.createAssignment(
                tenantID: tenantID,
                assetID: asset.id,
                groupID: groupID,
                action: .required,
                licenseType: .user
            )
            let seconds = (ContinuousClock.now - started).inSeconds
            let outbox = try await storage.withTenant(tenantID) { transaction in
                try await transaction.query("SELECT count(*)::bigint FROM apple_outbox WHERE adam_id = \(asset.adamID)")
                    .single().decode(Int.self, at: 0)
            }
            guard assignment.granted == self.users, outbox == self.users else {
                throw SyncBenchmarkError(
                    "granted \(assignment.granted) and queued \(outbox) associations; expected \(self.users) each"
                )
            }
            runs.append(AssignReport.Run(seconds: seconds, ledgerEntries: assignment.targets, outboxRows: outbox))
        }
        try await storage.tenants.delete(tenantID)
        return AssignReport(users: self.users, runs: runs, cores: ProcessInfo.processInfo.activeProcessorCount)
    }
}

struct AssignReport: Codable {
    struct Run: Codable {
        var seconds: Double
        var ledgerEntries: Int
        var outboxRows: Int
    }

    var users: Int
    var runs: [Run]
    var cores: Int

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    func human() -> String {
        var lines = ["Assign one app to a group of \(users) users (user licensing); \(cores) cores"]
        for (index, run) in runs.enumerated() {
            lines.append(
                "  run \(index + 1): \(String(format: "%.2f", run.seconds)) s until \(run.ledgerEntries) ledger entries and \(run.outboxRows) Apple associations were queued"
            )
        }
        return lines.joined(separator: "\n")
    }
}
