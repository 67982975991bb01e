public import NIOSSL

/// TLS on the RPC port: the server's certificate chain and private key, loaded once at start-up.
///
/// TLS 1.2 is the minimum; the client is not asked for a certificate (it authenticates with its API key, inside the
/// encrypted stream). vppd turns this on with `--tls-cert-file` and `--tls-key-file`, and refuses to serve plain TCP
/// on an address other than loopback unless told to (docs/operations.md).
public struct ServerTLS: Sendable {
    public let context: NIOSSLContext

    public init(context: NIOSSLContext) {
        self.context = context
    }

    /// Loads a PEM certificate chain (leaf first) and a PEM private key. The error says which file is at fault.
    public static func load(certificateChainFile: String, privateKeyFile: String) throws -> ServerTLS {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateChainFile)
        } catch {
            throw ConfigurationError(
                message:
                    "The TLS certificate file \(certificateChainFile) cannot be read as PEM certificates: \(error)."
            )
        }
        guard !chain.isEmpty else {
            throw ConfigurationError(message: "The TLS certificate file \(certificateChainFile) holds no certificate.")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: privateKeyFile, format: .pem)
        } catch {
            throw ConfigurationError(
                message: "The TLS key file \(privateKeyFile) cannot be read as a PEM private key: \(error)."
            )
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        do {
            return ServerTLS(context: try NIOSSLContext(configuration: configuration))
        } catch {
            throw ConfigurationError(
                message:
                    "The TLS certificate \(certificateChainFile) and key \(privateKeyFile) do not make a usable pair: \(error)."
            )
        }
    }
}
