import Foundation
import NIOSSL
public import VPPNotifications
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

extension ResolvedSettings {
    /// The listener for Apple's notifications (issue 18), when --notification-url is set. Apple sends only to HTTPS
    /// URLs: without a certificate the listener serves plain HTTP on loopback only (behind a proxy that terminates
    /// TLS, or the local run with the simulator).
    public func notificationEndpoint() throws -> NotificationEndpointConfiguration? {
        let url = self[.notificationURL]
        guard !url.isEmpty else { return nil }
        guard let parsed = URLComponents(string: url), ["https", "http"].contains(parsed.scheme ?? ""),
            parsed.host?.isEmpty == false
        else {
            throw SettingsError("--notification-url must be an https URL Apple can reach; got \"\(url)\".")
        }
        let host = self[.notificationHost]
        let port = try self.int(.notificationPort, in: 0...65535)
        let certificate = self[.notificationTLSCertFile]
        let key = self[.notificationTLSKeyFile]
        var tls: TLSConfiguration?
        switch (certificate.isEmpty, key.isEmpty) {
        case (false, false):
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(certificate)
                let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
                tls = TLSConfiguration.makeServerConfiguration(
                    certificateChain: chain.map { .certificate($0) },
                    privateKey: .privateKey(privateKey)
                )
            } catch {
                throw SettingsError("The notification listener's certificate or key cannot be read: \(error).")
            }
        case (true, true):
            guard HostAddress.isLoopback(host) else {
                throw SettingsError(
                    "The notification listener would serve plain HTTP on \(host). Give --notification-tls-cert-file and "
                        + "--notification-tls-key-file, or listen on 127.0.0.1 behind a proxy that terminates TLS."
                )
            }
        default:
            throw SettingsError(
                "TLS on the notification listener needs both --notification-tls-cert-file and --notification-tls-key-file."
            )
        }
        var path = parsed.path
        while path.hasSuffix("/") { path.removeLast() }
        // Apple posts to <url>/<tenant>/<token>: the listener serves the URL's path (a proxy in front must keep it).
        return NotificationEndpointConfiguration(host: host, port: port, tls: tls, path: path)
    }
}
