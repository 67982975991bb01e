import ArgumentParser

/// `vpp-load create-tenants`: provisioning speed, one tenant (row, role, schema) per call.
struct CreateTenantsCommand: LoadSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "create-tenants",
        abstract: "Create tenants named <prefix>1 … <prefix>N over RPC and report how fast.",
        discussion: """
            Needs an operator key. --concurrency calls are in flight at once, spread over --connections \
            connections. Exits 1 if any call failed. Display names need not be unique, so running it twice \
            creates 2N tenants.
            Example: VPP_API_KEY=… vpp-load create-tenants --count 1000 --concurrency 8
            """
    )

    @OptionGroup var target: TargetOptions

    @Option(help: "Tenants to create.")
    var count: Int = 1000

    @Option(help: "Calls in flight at once.")
    var concurrency: Int = 8

    @Option(help: "Connections the calls are spread over.")
    var connections: Int = 1

    @Option(name: .customLong("name-prefix"), help: "The tenants' display names are this and a number from 1.")
    var namePrefix: String = "load-tenant-"

    mutating func validate() throws {
        guard (1...1_000_000).contains(self.count) else { throw ValidationError("--count must be 1 to 1000000.") }
        guard (1...256).contains(self.concurrency) else { throw ValidationError("--concurrency must be 1 to 256.") }
        guard (1...self.concurrency).contains(self.connections) else {
            throw ValidationError("--connections must be 1 to --concurrency (\(self.concurrency)).")
        }
        guard !self.namePrefix.isEmpty, self.namePrefix.count <= 180 else {
            throw ValidationError("--name-prefix must be 1 to 180 characters.")
        }
    }

    func execute() async throws {
        let plan = LoadPlan(
            connections: self.connections,
            concurrency: self.concurrency,
            bound: .calls(self.count),
            callTimeout: self.target.callTimeout
        )
        try await self.target.runAndReport(CreateTenantWorkload(namePrefix: self.namePrefix), plan: plan)
    }
}
