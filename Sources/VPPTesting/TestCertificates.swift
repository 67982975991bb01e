public import Foundation

/// A private CA and a server certificate it signed, made with the `openssl` command (Deploy/lib/install-deps.sh
/// installs it) in a fresh temporary directory: for TLS tests and local runs.
public struct TestCertificates: Sendable {
    public let directory: String
    /// The CA's certificate (PEM): what a client trusts with `--ca-file`.
    public let caFile: String
    /// The server's certificate (PEM), for `names` (DNS names and IP addresses).
    public let certificateFile: String
    /// The server's private key (PEM).
    public let keyFile: String

    /// - Parameter names: the subject alternative names, e.g. `["localhost", "127.0.0.1"]`.
    public static func make(names: [String] = ["localhost", "127.0.0.1", "::1"]) async throws -> TestCertificates {
        let directory = NSTemporaryDirectory() + "vpp-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(
            directory: directory,
            caFile: directory + "/ca.pem",
            certificateFile: directory + "/server.pem",
            keyFile: directory + "/server.key"
        )
        let alternativeNames = names.map { name in
            name.contains(":") || name.allSatisfy({ $0.isNumber || $0 == "." }) ? "IP:\(name)" : "DNS:\(name)"
        }.joined(separator: ",")
        try """
        basicConstraints=critical,CA:FALSE
        keyUsage=critical,digitalSignature
        extendedKeyUsage=serverAuth
        subjectAltName=\(alternativeNames)

        """.write(toFile: directory + "/server.ext", atomically: true, encoding: .utf8)
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try await Self.openssl(
            ["req", "-x509"] + curve + [
                "-keyout", directory + "/ca.key", "-out", certificates.caFile, "-days", "2",
                "-subj", "/CN=VPP Test CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ]
        )
        try await Self.openssl(
            ["req"] + curve + [
                "-keyout", certificates.keyFile, "-out", directory + "/server.csr", "-subj",
                "/CN=\(names.first ?? "localhost")",
            ]
        )
        try await Self.openssl([
            "x509", "-req", "-in", directory + "/server.csr", "-CA", certificates.caFile, "-CAkey",
            directory + "/ca.key",
            "-CAcreateserial", "-out", certificates.certificateFile, "-days", "2", "-extfile",
            directory + "/server.ext",
        ])
        return certificates
    }

    private static func openssl(_ arguments: [String]) async throws {
        let (status, output) = try await runChildProcess("/usr/bin/openssl", arguments)
        guard status == 0 else {
            throw TestCertificatesError(message: "openssl \(arguments.first ?? "") failed (\(status)): \(output)")
        }
    }
}

public struct TestCertificatesError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { self.message }
}
