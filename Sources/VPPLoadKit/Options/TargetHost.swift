#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The safety rule of `vpp-load`: it sends load only to this machine unless told otherwise.
///
/// Loopback means `localhost`, an IPv4 address in 127.0.0.0/8, `::1` or an IPv4-mapped `::ffff:127.x.y.z`.
/// Other names are not resolved: a name that happens to resolve to loopback is refused too, which errs on the safe
/// side and keeps the check free of DNS.
public enum TargetHost {
    public static func isLoopback(_ host: String) -> Bool {
        var name = host
        if name.hasPrefix("["), name.hasSuffix("]") {
            name = String(name.dropFirst().dropLast())
        }
        if name.lowercased() == "localhost" || name.lowercased() == "localhost." {
            return true
        }
        var v4 = in_addr()
        if inet_pton(AF_INET, name, &v4) == 1 {
            return Self.firstOctet(of: v4) == 127
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

    /// Throws unless `host` is loopback or remote targets were allowed explicitly.
    public static func validate(_ host: String, allowRemote: Bool) throws(TargetHostError) {
        guard allowRemote || Self.isLoopback(host) else {
            throw TargetHostError(host: host)
        }
    }

    private static func firstOctet(of address: in_addr) -> UInt8 {
        // s_addr is in network byte order: its first byte in memory is the first octet.
        withUnsafeBytes(of: address) { $0[0] }
    }
}

public struct TargetHostError: Error, CustomStringConvertible, Equatable {
    public var host: String

    public var description: String {
        "--host \(self.host) is not a loopback address: vpp-load sends load only to this machine (127.0.0.0/8, ::1, "
            + "localhost) unless --allow-remote is given."
    }
}
