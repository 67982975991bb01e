#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a host string names, without DNS: the server (plain TCP allowed on loopback only), the client (TLS by default
/// off loopback) and vpp-load (load only to this machine) share this one rule.
///
/// Loopback means `localhost`, an IPv4 address in 127.0.0.0/8, `::1` or an IPv4-mapped `::ffff:127.x.y.z`.
/// Other names are not resolved: a name that happens to resolve to loopback counts as remote, which errs on the safe
/// side.
public enum HostAddress {
    public static func isLoopback(_ host: String) -> Bool {
        let name = Self.unbracketed(host)
        if name.lowercased() == "localhost" || name.lowercased() == "localhost." {
            return true
        }
        var v4 = in_addr()
        if inet_pton(AF_INET, name, &v4) == 1 {
            // s_addr is in network byte order: its first byte in memory is the first octet.
            return withUnsafeBytes(of: v4) { $0[0] } == 127
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, name, &v6) == 1 {
            let bytes = withUnsafeBytes(of: v6) { Array($0) }
            let loopback: [UInt8] = Array(repeating: 0, count: 15) + [1]
            if bytes == loopback { return true }
            let mappedPrefix: [UInt8] = Array(repeating: 0, count: 10) + [0xFF, 0xFF]
            return Array(bytes.prefix(12)) == mappedPrefix && bytes[12] == 127
        }
        return false
    }

    /// Whether `host` is an IPv4 or IPv6 address rather than a name.
    public static func isIPAddress(_ host: String) -> Bool {
        let name = Self.unbracketed(host)
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1
    }

    private static func unbracketed(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }
}
