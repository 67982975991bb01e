/// One RPC method of a service in `Protos/`: its request and response types and its wire path.
///
/// Each method is a generated caseless enum, e.g. `VppV1.SystemService.Ping`, so it can be used as a type parameter
/// (`client.call(VppV1.SystemService.Ping.self, request)`).
public protocol ProtoMethod {
    associatedtype Request: ProtoMessage
    associatedtype Response: ProtoMessage

    /// The full method name sent in a `Call`: `"/<package>.<Service>/<Method>"`, e.g. `"/vpp.v1.SystemService/Ping"`.
    static var path: String { get }

    /// Whether the server answers with a stream of responses instead of exactly one.
    static var isServerStreaming: Bool { get }

    /// The method's description as a value.
    static var info: ProtoMethodInfo { get }
}

/// A method's description as a value, for routing tables and listings.
public struct ProtoMethodInfo: Sendable, Hashable {
    /// `"/<package>.<Service>/<Method>"`.
    public var path: String
    /// The service's full name, e.g. `"vpp.v1.SystemService"`.
    public var service: String
    /// The method's name within its service, e.g. `"Ping"`.
    public var method: String
    /// The request message's full name, e.g. `"vpp.v1.PingRequest"`.
    public var requestMessageName: String
    /// The response message's full name.
    public var responseMessageName: String
    public var isServerStreaming: Bool

    public init(
        service: String,
        method: String,
        requestMessageName: String,
        responseMessageName: String,
        isServerStreaming: Bool
    ) {
        self.path = "/\(service)/\(method)"
        self.service = service
        self.method = method
        self.requestMessageName = requestMessageName
        self.responseMessageName = responseMessageName
        self.isServerStreaming = isServerStreaming
    }
}
