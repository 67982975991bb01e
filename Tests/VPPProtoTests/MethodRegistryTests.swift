import Testing
import VPPProto

@Suite("Method registry")
struct MethodRegistryTests {
    @Test("A method's info composes the wire path from service and method")
    func infoComposesPath() {
        let info = ProtoMethodInfo(
            service: "vpp.v1.SystemService",
            method: "Ping",
            requestMessageName: "vpp.v1.PingRequest",
            responseMessageName: "vpp.v1.PingResponse",
            isServerStreaming: false
        )
        #expect(info.path == "/vpp.v1.SystemService/Ping")
    }

    @Test("Every registered method has a unique, well-formed path")
    func registeredPathsAreUnique() {
        let paths = ProtoRegistry.allMethods.map(\.path)
        #expect(Set(paths).count == paths.count)
        for info in ProtoRegistry.allMethods {
            #expect(info.path == "/\(info.service)/\(info.method)")
        }
    }
}
