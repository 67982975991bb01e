public import VPPServer
import VPPWire

extension ResolvedSettings {
    /// TLS on the RPC port from --tls-cert-file and --tls-key-file. Without them, vppd serves plain TCP on loopback
    /// only, unless --allow-plaintext says otherwise: API keys never cross a network in clear text by default.
    public func serverTLS() throws -> ServerTLS? {
        let certificate = self[.tlsCertFile]
        let key = self[.tlsKeyFile]
        switch (certificate.isEmpty, key.isEmpty) {
        case (false, false):
            do {
                return try ServerTLS.load(certificateChainFile: certificate, privateKeyFile: key)
            } catch let error as ConfigurationError {
                throw SettingsError(error.message)
            }
        case (true, true):
            let host = self[.host]
            if !HostAddress.isLoopback(host), !(try self.bool(.allowPlaintext)) {
                throw SettingsError(
                    "The RPC port would serve plain TCP on \(host), and API keys would cross the network in clear text. "
                        + "Give --tls-cert-file and --tls-key-file (VPP_TLS_CERT_FILE, VPP_TLS_KEY_FILE), listen on "
                        + "127.0.0.1, or set --allow-plaintext true behind a proxy that terminates TLS."
                )
            }
            return nil
        default:
            throw SettingsError(
                "TLS needs both --tls-cert-file and --tls-key-file (VPP_TLS_CERT_FILE, VPP_TLS_KEY_FILE); only one is set."
            )
        }
    }
}
