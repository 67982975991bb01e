import Foundation
import Testing
import VPPPostgres
import VPPTesting

/// Issue 16: the embedded cluster no longer trusts every local account.
@Suite("The embedded cluster asks for the superuser's password")
struct EmbeddedAccessTests {
    static func connects(_ configuration: PostgresConfiguration) async -> Bool {
        var configuration = configuration
        configuration.poolSize = 1
        let pool = PostgresPool(configuration: configuration)
        defer { Task { await pool.shutdown() } }
        do {
            try await pool.query("SELECT 1")
            return true
        } catch {
            return false
        }
    }

    @Test("without the password file's secret nobody connects, even on loopback as the superuser; the file is 0600")
    func passwordRequired() async throws {
        let cluster = try await TestPostgres.makeDedicatedCluster()
        let attributes = try FileManager.default.attributesOfItem(atPath: cluster.passwordFile)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(await Self.connects(cluster.configuration()))
        var noPassword = cluster.configuration()
        noPassword.password = nil
        #expect(!(await Self.connects(noPassword)), "a local account without the password got in")
        var wrong = cluster.configuration()
        wrong.password = "guess"
        #expect(!(await Self.connects(wrong)))
        try await cluster.stop()
    }

    @Test("a data directory from before passwords (trust, no password file) gets a password at its next start")
    func olderDataDirectoryGetsAPassword() async throws {
        let cluster = try await TestPostgres.makeDedicatedCluster()
        try await cluster.stop()
        // As older versions left it: no password file, every connection trusted.
        try FileManager.default.removeItem(atPath: cluster.passwordFile)
        let path = cluster.options.dataDirectory + "/pg_hba.conf"
        try "local all all trust\nhost all all 127.0.0.1/32 trust\n".write(
            toFile: path,
            atomically: false,
            encoding: .utf8
        )
        try await cluster.start()
        #expect(FileManager.default.fileExists(atPath: cluster.passwordFile))
        #expect(await Self.connects(cluster.configuration()))
        var noPassword = cluster.configuration()
        noPassword.password = nil
        #expect(!(await Self.connects(noPassword)))
        try await cluster.stop()
    }
}
