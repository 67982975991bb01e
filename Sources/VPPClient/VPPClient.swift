import NIOConcurrencyHelpers
public import NIOCore
public import VPPProto
public import VPPWire

/// The Swift client of the VPP License Server: used by the tests, `vppctl` and `vpp-load`.
///
/// One client keeps one authenticated connection and multiplexes every call over it: many calls in flight, answered
/// in any order. A call on a connection that closed or is draining opens a new one (when `reconnect` is on).
/// Errors are `RPCError`s: the server's status, or UNAVAILABLE when the server cannot be reached.
///
/// ```swift
/// let client = VPPClient(ClientConfiguration(host: "127.0.0.1", port: 7443, apiKey: key))
/// let tenants = try await client.call(VppV1.OperatorService.ListTenants.self, VppV1.ListTenantsRequest())
/// ```
public final class VPPClient: Sendable {
    public let configuration: ClientConfiguration
    private let connection = NIOLockedValueBox<Task<ClientConnection, any Error>?>(nil)
    private let nonces = NIOLockedValueBox<UInt64>(0)

    public init(_ configuration: ClientConfiguration) {
        self.configuration = configuration
    }

    /// Connects and authenticates now (calls do it by themselves when needed). Returns the server's Welcome.
    @discardableResult
    public func connect() async throws -> RpcV1.Welcome {
        try await self.currentConnection().welcome
    }

    /// Calls a unary method.
    public func call<Method: ProtoMethod>(
        _ method: Method.Type,
        _ request: Method.Request,
        timeout: Duration? = nil,
        metadata: [String: String] = [:]
    ) async throws -> Method.Response {
        let bytes = try await self.unaryBytes(
            path: Method.path,
            request: request.serializedBytes(),
            timeout: timeout ?? self.configuration.defaultTimeout,
            metadata: metadata
        )
        do {
            return try Method.Response(serializedBytes: bytes)
        } catch {
            throw RPCError.internalError("The server's answer to \(Method.path) does not decode: \(error).")
        }
    }

    /// Calls a method by name with raw request bytes; returns the raw response bytes (tools and tests).
    public func unaryBytes(
        path: String,
        request: [UInt8],
        timeout: Duration?,
        metadata: [String: String] = [:]
    ) async throws -> [UInt8] {
        var response: [UInt8]?
        for try await message in try await self.startStream(
            path: path,
            request: request,
            timeout: timeout,
            metadata: metadata
        ) {
            response = message
        }
        guard let response else {
            throw RPCError.internalError("The server ended \(path) without a response message.")
        }
        return response
    }

    /// Calls a server-streaming method. The stream ends when the call ends; it throws the call's error status.
    /// Cancelling the consuming task cancels the call on the server.
    public func stream<Method: ProtoMethod>(
        _ method: Method.Type,
        _ request: Method.Request,
        timeout: Duration? = nil,
        metadata: [String: String] = [:]
    ) -> AsyncThrowingStream<Method.Response, any Error> {
        let (stream, continuation) = AsyncThrowingStream<Method.Response, any Error>.makeStream()
        let task = Task {
            do {
                let raw = try await self.startStream(
                    path: Method.path,
                    request: request.serializedBytes(),
                    timeout: timeout,
                    metadata: metadata
                )
                for try await bytes in raw {
                    continuation.yield(try Method.Response(serializedBytes: bytes))
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Starts a call. A call the server closed its connection on before starting it (an idle timeout racing the call,
    /// say) is sent again on a new connection, up to twice, when reconnecting is on; nothing can run twice, since the
    /// server said it never started the call.
    private func startStream(
        path: String,
        request: [UInt8],
        timeout: Duration?,
        metadata: [String: String]
    ) async throws -> CallResponses {
        var attempt = 1
        while true {
            let connection = try await self.currentConnection()
            let (callID, responses) = connection.start(
                method: path,
                request: request,
                timeout: timeout,
                metadata: metadata
            )
            var call = CallResponses(connection: connection, callID: callID, responses: responses)
            do {
                try await call.awaitFirst()
                return call
            } catch let error as CallNotStarted {
                guard self.configuration.reconnect, attempt < 3 else { throw RPCError(status: error.status) }
                attempt += 1
            }
        }
    }

    /// Round-trips a Ping frame (not an RPC) and returns the time it took.
    public func ping() async throws -> Duration {
        let connection = try await self.currentConnection()
        let nonce = self.nonces.withLockedValue { value -> UInt64 in
            value += 1
            return value
        }
        let start = ContinuousClock.now
        try await connection.ping(nonce: nonce)
        return ContinuousClock.now - start
    }

    /// Closes the connection. Calls in flight fail with UNAVAILABLE.
    public func close() async {
        let task = self.connection.withLockedValue { current -> Task<ClientConnection, any Error>? in
            defer { current = nil }
            return current
        }
        if let connection = try? await task?.value {
            await connection.close()
        }
    }

    private func currentConnection() async throws -> ClientConnection {
        while true {
            let task = self.connection.withLockedValue { current -> Task<ClientConnection, any Error> in
                if let current { return current }
                let configuration = self.configuration
                let task = Task { try await ClientConnection.connect(configuration) }
                current = task
                return task
            }
            let connection: ClientConnection
            do {
                connection = try await task.value
            } catch {
                // A failed attempt is forgotten, so the next call tries again.
                self.forget(task)
                throw error
            }
            if await connection.isUsable {
                return connection
            }
            guard self.configuration.reconnect else {
                throw RPCError.unavailable("The connection to the server is closed and reconnecting is off.")
            }
            self.forget(task)
        }
    }

    private func forget(_ task: Task<ClientConnection, any Error>) {
        self.connection.withLockedValue { current in
            if current == task { current = nil }
        }
    }
}

/// A call's response messages; iterating it to the end consumes the call, and cancelling the iterating task sends
/// a Cancel frame.
struct CallResponses: AsyncSequence {
    typealias Element = [UInt8]
    let connection: ClientConnection
    let callID: EventLoopFuture<UInt64>
    let responses: AsyncThrowingStream<[UInt8], any Error>
    /// The first event of the call (a message, the end, or an error), read ahead by `awaitFirst`.
    private var first: Result<[UInt8]?, any Error>?
    private var iterator: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator?

    init(
        connection: ClientConnection,
        callID: EventLoopFuture<UInt64>,
        responses: AsyncThrowingStream<[UInt8], any Error>
    ) {
        self.connection = connection
        self.callID = callID
        self.responses = responses
    }

    /// Waits for the call's first event; throws `CallNotStarted` when the server never started the call, and keeps
    /// every other outcome for the iteration.
    mutating func awaitFirst() async throws {
        var iterator = AsyncIterator(
            connection: self.connection,
            callID: self.callID,
            base: self.responses.makeAsyncIterator()
        )
        do {
            self.first = .success(try await iterator.next())
        } catch let error as CallNotStarted {
            throw error
        } catch {
            self.first = .failure(error)
        }
        self.iterator = iterator.base
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let connection: ClientConnection
        let callID: EventLoopFuture<UInt64>
        var base: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator
        var first: Result<[UInt8]?, any Error>?

        init(
            connection: ClientConnection,
            callID: EventLoopFuture<UInt64>,
            base: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator,
            first: Result<[UInt8]?, any Error>? = nil
        ) {
            self.connection = connection
            self.callID = callID
            self.base = base
            self.first = first
        }

        mutating func next() async throws -> [UInt8]? {
            if let first = self.first {
                self.first = nil
                return try first.get()
            }
            let connection = self.connection
            let callID = self.callID
            var base = self.base
            defer { self.base = base }
            return try await withTaskCancellationHandler {
                let message: [UInt8]?
                do {
                    message = try await base.next()
                } catch is CancellationError {
                    throw RPCError.cancelled("The call was cancelled.")
                }
                // A cancelled task's stream ends without an error; the call did not end normally.
                if message == nil, Task.isCancelled {
                    throw RPCError.cancelled("The call was cancelled.")
                }
                return message
            } onCancel: {
                callID.whenSuccess { connection.cancel(callID: $0) }
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(
            connection: self.connection,
            callID: self.callID,
            base: self.iterator ?? self.responses.makeAsyncIterator(),
            first: self.first
        )
    }
}
