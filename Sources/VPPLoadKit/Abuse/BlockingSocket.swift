import Glibc

/// A plain blocking TCP socket (Linux) for the attackers of `vpp-load abuse`: each runs on a thread of its own, so an
/// attacker that waits on the server never takes a turn from the steady client's event loop. IPv4 loopback only
/// (the tool refuses other hosts unless told).
final class BlockingSocket {
    private(set) var descriptor: Int32

    struct Failure: Error, CustomStringConvertible {
        var operation: String
        var code: Int32
        var description: String { "\(self.operation): \(String(cString: strerror(self.code)))" }
    }

    /// Connects to `host:port` (a dotted IPv4 address), with a receive timeout.
    init(host: String, port: Int, receiveTimeoutSeconds: Int = 30) throws(Failure) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(operation: "socket", code: errno) }
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            _ = Glibc.close(descriptor)
            self.descriptor = -1
            throw Failure(operation: "address \(host)", code: EINVAL)
        }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let code = errno
            _ = Glibc.close(descriptor)
            self.descriptor = -1
            throw Failure(operation: "connect", code: code)
        }
        self.setReceiveTimeout(seconds: receiveTimeoutSeconds)
    }

    /// How long a read waits for the server before it gives up.
    func setReceiveTimeout(seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { self.close() }

    /// Sends every byte, or throws when the server closed the connection (EPIPE, ECONNRESET).
    func send(_ bytes: [UInt8]) throws(Failure) {
        var sent = 0
        while sent < bytes.count {
            let result = bytes.withUnsafeBytes { raw in
                Glibc.send(self.descriptor, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw Failure(operation: "send", code: errno)
            }
            sent += result
        }
    }

    /// Reads one length-prefixed frame's body; nil when the server closed the connection (or the timeout passed).
    func readFrame(maxBytes: Int = 16 * 1024 * 1024) -> [UInt8]? {
        guard let prefix = self.read(exactly: 4) else { return nil }
        let length = Int(prefix[0]) << 24 | Int(prefix[1]) << 16 | Int(prefix[2]) << 8 | Int(prefix[3])
        guard length <= maxBytes else { return nil }
        return length == 0 ? [] : self.read(exactly: length)
    }

    /// Reads until the server closes the connection (or the timeout passes), dropping what arrives.
    func drainUntilClosed() {
        var scratch = [UInt8](repeating: 0, count: 4096)
        while true {
            let result = scratch.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress!, $0.count, 0) }
            if result > 0 { continue }
            if result < 0, errno == EINTR { continue }
            return
        }
    }

    private func read(exactly count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            let result = bytes.withUnsafeMutableBytes { raw in
                recv(self.descriptor, raw.baseAddress! + received, count - received, 0)
            }
            if result > 0 {
                received += result
            } else if result < 0, errno == EINTR {
                continue
            } else {
                return nil
            }
        }
        return bytes
    }

    func close() {
        if self.descriptor >= 0 {
            _ = Glibc.close(self.descriptor)
            self.descriptor = -1
        }
    }
}

/// Raises this process's soft descriptor limit to its hard limit (a close storm holds thousands of sockets).
/// Returns the soft limit in force after.
@discardableResult
func raiseDescriptorLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
    return Int(limit.rlim_cur)
}
