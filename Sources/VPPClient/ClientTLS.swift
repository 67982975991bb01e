import NIOSSL
import VPPWire

/// How a client protects its connection: API keys never cross a network in clear text unless asked to.
public enum TransportSecurity: Sendable, Equatable {
    /// TLS with the system's trusted CAs, except to a loopback address (127.0.0.0/8, ::1, localhost), where plain
    /// TCP is used: that is how the local run serves.
    case automatic
    /// TLS, verifying the server's certificate as `ClientTLS` says.
    case tls(ClientTLS)
    /// Plain TCP, whatever the address: the API key travels in clear text.
    case plaintext

    /// What this setting means for a connection to `host`: TLS settings, or nil for plain TCP.
    public func resolved(host: String) -> ClientTLS? {
        switch self {
        case .automatic: HostAddress.isLoopback(host) ? nil : ClientTLS()
        case .tls(let tls): tls
        case .plaintext: nil
        }
    }
}

/// TLS settings of a client. The server's certificate is always verified: its chain against the trusted CAs, and its
/// name against the host connected to (a DNS name, or an IP address in the certificate's subject alternative names).
public struct ClientTLS: Sendable, Equatable {
    /// A PEM file of CA certificates to trust instead of the system's (a private CA). nil: the system's CAs.
    public var trustRootsFile: String?
    /// The name the certificate must carry, when it differs from the host connected to. nil: the host.
    public var serverName: String?

    public init(trustRootsFile: String? = nil, serverName: String? = nil) {
        self.trustRootsFile = trustRootsFile
        self.serverName = serverName
    }

    func makeContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        if let file = self.trustRootsFile {
            let roots: [NIOSSLCertificate]
            do {
                roots = try NIOSSLCertificate.fromPEMFile(file)
            } catch {
                throw RPCError.failedPrecondition(
                    "The CA file \(file) cannot be read as PEM certificates (\(error)). Give the PEM file of the CA that signed the server's certificate."
                )
            }
            if roots.isEmpty {
                throw RPCError.failedPrecondition("The CA file \(file) holds no certificate.")
            }
            configuration.trustRoots = .certificates(roots)
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw RPCError.failedPrecondition("TLS cannot be set up: \(error).")
        }
    }

    /// The name sent in SNI and checked against the certificate; nil for an IP address, which is checked against
    /// the certificate's IP address entries instead.
    func hostnameToVerify(host: String) -> String? {
        let name = self.serverName ?? host
        return HostAddress.isIPAddress(name) ? nil : name
    }
}
