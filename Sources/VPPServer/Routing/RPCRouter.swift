import NIOPosix
public import VPPProto
public import VPPWire

/// Which principals may call a method.
public enum PrincipalRequirement: Sendable, Hashable {
    /// Any authenticated principal (SystemService).
    case any
    /// Operator keys only (OperatorService).
    case `operator`
    /// Tenant keys only (every tenant-facing service).
    case tenant
}

/// The server's dispatch table: one entry per implemented method, found by the full method name.
///
/// Methods declared in `Protos/` but not registered answer UNIMPLEMENTED with a message saying so; names that are not
/// declared at all answer UNIMPLEMENTED as unknown methods.
public struct RPCRouter: Sendable {
    /// A registered method, type-erased to bytes in and bytes out.
    public struct Route: Sendable {
        public let path: String
        public let requirement: PrincipalRequirement
        public let isServerStreaming: Bool
        /// Runs the method: decodes the request (INVALID_ARGUMENT when it does not decode), calls the handler, and
        /// returns the encoded response (nil for a streaming method, whose messages went through `stream`).
        let invoke:
            @Sendable (_ request: [UInt8], _ context: CallContext, _ stream: @escaping StreamSink) async throws ->
                [UInt8]?
    }

    /// Writes one encoded stream message of a call.
    public typealias StreamSink = @Sendable ([UInt8]) async throws -> Void

    private var routes: [String: Route] = [:]
    private let declared: Set<String>

    public init(declaredMethods: [ProtoMethodInfo] = ProtoRegistry.allMethods) {
        self.declared = Set(declaredMethods.map(\.path))
    }

    /// Registers a unary method.
    public mutating func register<Method: ProtoMethod>(
        _ method: Method.Type,
        requires requirement: PrincipalRequirement,
        _ handler: @escaping @Sendable (Method.Request, CallContext) async throws -> Method.Response
    ) {
        precondition(!Method.isServerStreaming, "\(Method.path) is server-streaming; use registerStream")
        self.add(
            Route(path: Method.path, requirement: requirement, isServerStreaming: false) { bytes, context, _ in
                let request = try await Self.decode(Method.Request.self, bytes, method: Method.path)
                return try await handler(request, context).serializedBytes()
            }
        )
    }

    /// Registers a server-streaming method.
    public mutating func registerStream<Method: ProtoMethod>(
        _ method: Method.Type,
        requires requirement: PrincipalRequirement,
        _ handler:
            @escaping @Sendable (Method.Request, CallContext, ResponseStream<Method.Response>) async throws -> Void
    ) {
        precondition(Method.isServerStreaming, "\(Method.path) is unary; use register")
        self.add(
            Route(path: Method.path, requirement: requirement, isServerStreaming: true) { bytes, context, sink in
                let request = try await Self.decode(Method.Request.self, bytes, method: Method.path)
                try await handler(request, context, ResponseStream(sendBytes: sink))
                return nil
            }
        )
    }

    private mutating func add(_ route: Route) {
        precondition(self.routes[route.path] == nil, "\(route.path) registered twice")
        self.routes[route.path] = route
    }

    /// The route for a method name, or the error to answer with.
    public func route(for path: String) -> Result<Route, RPCError> {
        if let route = self.routes[path] {
            return .success(route)
        }
        if self.declared.contains(path) {
            return .failure(
                .unimplemented("\(path) is part of the API but not implemented by this server version yet.")
            )
        }
        return .failure(
            .unimplemented("Unknown method \"\(path.prefix(200))\"; method names look like /vpp.v1.SystemService/Ping.")
        )
    }

    public var registeredPaths: [String] { self.routes.keys.sorted() }

    /// The method name to use in metrics and logs: the path for a declared or registered method, "(unknown)" for
    /// anything else, so a client cannot create unbounded label values.
    public func knownName(for path: String) -> String {
        self.routes[path] != nil || self.declared.contains(path) ? path : "(unknown)"
    }

    /// The most elements a repeated field of a request may hold (bulk calls take 5,000 and say so); checked on the
    /// wire bytes before anything is decoded (issue 16).
    public static let maxRepeatedElements = 10_000
    /// Requests larger than this are decoded on NIO's thread pool, not on the event loop that runs the call.
    static let decodeOffLoopBytes = 64 * 1024

    private static func decode<Message: ProtoMessage>(
        _ type: Message.Type,
        _ bytes: [UInt8],
        method: String
    ) async throws -> Message {
        let largest: Int
        do {
            // Stops at the first element over the limit: refusing costs no more than reading the limit's worth.
            largest = try ProtoWireScan.largestRepetition(bytes, stoppingAbove: Self.maxRepeatedElements)
        } catch {
            throw RPCError.invalidArgument(
                "The request does not decode as \(Message.protoMessageName) (\(method)): malformed."
            )
        }
        guard largest <= Self.maxRepeatedElements else {
            throw RPCError.invalidArgument(
                "The request repeats one field more than \(Self.maxRepeatedElements) times, the most a request may hold of one list (bulk calls take 5,000).",
                reason: "TOO_MANY_ELEMENTS"
            )
        }
        do {
            if bytes.count > Self.decodeOffLoopBytes {
                return try await NIOThreadPool.singleton.runIfActive { try Message(serializedBytes: bytes) }
            }
            return try Message(serializedBytes: bytes)
        } catch {
            throw RPCError.invalidArgument(
                "The request does not decode as \(Message.protoMessageName) (\(method)): \(error)."
            )
        }
    }

    /// Checks that a principal may call a route.
    public static func authorize(_ principal: Principal, for route: Route) throws(RPCError) {
        switch (route.requirement, principal.kind) {
        case (.any, _), (.operator, .operator), (.tenant, .tenant):
            return
        case (.operator, .tenant):
            throw .permissionDenied("\(route.path) needs an operator API key; this connection uses a tenant key.")
        case (.tenant, .operator):
            throw .permissionDenied(
                "\(route.path) acts inside one tenant and needs that tenant's API key; this connection uses an operator key."
            )
        }
    }
}
