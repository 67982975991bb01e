import VPPWire

/// The safety rule of `vpp-load`: it sends load only to this machine unless told otherwise.
///
/// Loopback is `HostAddress.isLoopback`: no DNS, so a name that resolves to loopback is refused too.
public enum TargetHost {
    public static func isLoopback(_ host: String) -> Bool {
        HostAddress.isLoopback(host)
    }

    /// Throws unless `host` is loopback or remote targets were allowed explicitly.
    public static func validate(_ host: String, allowRemote: Bool) throws(TargetHostError) {
        guard allowRemote || Self.isLoopback(host) else {
            throw TargetHostError(host: host)
        }
    }
}

public struct TargetHostError: Error, CustomStringConvertible, Equatable {
    public var host: String

    public var description: String {
        "--host \(self.host) is not a loopback address: vpp-load sends load only to this machine (127.0.0.0/8, ::1, "
            + "localhost) unless --allow-remote is given."
    }
}
