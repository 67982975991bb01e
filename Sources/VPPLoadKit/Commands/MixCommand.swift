import ArgumentParser
import Foundation
import Logging
import VPPClock

/// How a tenant run is shaped: connections, calls in flight, and its bound.
struct RunShapeOptions: ParsableArguments {
    @Option(help: "Connections, each its own client; with --tenants N, connection c is tenant c mod N.")
    var connections: Int = 4

    @Option(
        name: .customLong("in-flight"),
        help: "Calls in flight on each connection (each task keeps to one connection)."
    )
    var inFlight: Int?

    @Option(
        help: """
            Calls in flight in all, spread over every connection (call i goes to connection i mod --connections), \
            instead of --in-flight: 64 calls can then reach 1,000 tenants.
            """
    )
    var concurrency: Int?

    @OptionGroup var runBound: RunBoundOptions

    @Option(
        help: """
            Call for this long first without measuring, e.g. 10s: the server's and PostgreSQL's caches (a plan and \
            catalog entries per tenant schema and database connection) are then warm, as in a server that has run \
            for a while.
            """
    )
    var warmup: String?

    var warmupDuration: Duration? { self.warmup.flatMap(LoadDuration.parse) }

    mutating func validate() throws {
        if let warmup, LoadDuration.parse(warmup) == nil {
            throw ValidationError("--warmup takes a duration such as 10s.")
        }
        guard (1...20_000).contains(self.connections) else {
            throw ValidationError("--connections must be 1 to 20000.")
        }
        if self.inFlight != nil, self.concurrency != nil {
            throw ValidationError("Give --in-flight or --concurrency, not both.")
        }
        if let inFlight, !(1...1024).contains(inFlight) { throw ValidationError("--in-flight must be 1 to 1024.") }
        if let concurrency, !(1...100_000).contains(concurrency) {
            throw ValidationError("--concurrency must be 1 to 100000.")
        }
    }

    func bound() throws -> LoadPlan.Bound {
        try self.runBound.bound()
    }

    func plan(callTimeout: Duration) throws -> LoadPlan {
        if let concurrency {
            return LoadPlan(
                connections: self.connections,
                concurrency: concurrency,
                bound: try self.bound(),
                callTimeout: callTimeout,
                spreadCalls: true
            )
        }
        return LoadPlan(
            connections: self.connections,
            concurrency: self.connections * (self.inFlight ?? 16),
            bound: try self.bound(),
            callTimeout: callTimeout
        )
    }
}

/// Where the tenants of a run come from.
struct TenantOptions: ParsableArguments {
    @Option(help: "Tenants to create for the run (needs an operator key in VPP_API_KEY and --database-url).")
    var tenants: Int = 1

    @Option(name: .customLong("apps-per-tenant"), help: "Apps in each tenant's token.")
    var appsPerTenant: Int = 10

    @Option(
        name: .customLong("database-url"),
        help: "The server's database (postgres://…), to store each tenant's token and apps as a sync would."
    )
    var databaseURL: String?

    @Option(name: .customLong("name-prefix"), help: "The created tenants' display names are this and a number.")
    var namePrefix: String = "load-mix-"

    mutating func validate() throws {
        guard (1...100_000).contains(self.tenants) else { throw ValidationError("--tenants must be 1 to 100000.") }
        guard (1...1000).contains(self.appsPerTenant) else {
            throw ValidationError("--apps-per-tenant must be 1 to 1000.")
        }
    }
}

/// `vpp-load mix` and `vpp-load counts`: tenant calls across prepared tenants.
struct MixCommand: TenantLoadSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "mix",
        abstract: "A weighted mix of ping, license-count reads, app lists and assignment writes across many tenants.",
        discussion: """
            Creates --tenants tenants first (operator RPCs; each tenant's token and apps are stored through \
            --database-url as a sync would store them), then calls as those tenants: connection c uses tenant \
            c mod N's key. Calls: ping (Ping, 32 bytes), counts (GetLicenseCounts), apps (ListApps, 20 a page), \
            assign (UpdateAssignment of an empty group between AVAILABLE and REQUIRED). Exits 1 if any call failed.
            Example: VPP_API_KEY=<operator key> vpp-load mix --database-url postgres://vpp@127.0.0.1:5432/vpp \
            --tenants 100 --connections 100 --concurrency 64 --weights ping=1,counts=6,apps=2,assign=1 --duration 30s
            """
    )

    @OptionGroup var target: TargetOptions
    @OptionGroup var shape: RunShapeOptions
    @OptionGroup var tenantOptions: TenantOptions

    @Option(help: "The mix: name=weight pairs among ping, counts, apps, assign.")
    var weights: String = "ping=1,counts=6,apps=2,assign=1"

    mutating func validate() throws {
        do {
            _ = try CallMix.parse(self.weights)
        } catch {
            throw ValidationError("--weights: \(error.description)")
        }
    }

    func execute(preparingTenantsWith preparer: any LoadTenantPreparing) async throws {
        try await runTenantMix(
            try CallMix.parse(self.weights),
            name: "mix",
            target: self.target,
            shape: self.shape,
            tenants: self.tenantOptions,
            preparer: preparer
        )
    }
}

/// `vpp-load counts`: the license-count read alone (the read of Benchmarks/compare.sh).
struct CountsCommand: TenantLoadSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "counts",
        abstract: "Read one app's license counts (GetLicenseCounts) as many tenants, many calls in flight.",
        discussion: """
            The same as `mix --weights counts=1`. Example: VPP_API_KEY=<operator key> vpp-load counts \
            --database-url postgres://vpp@127.0.0.1:5432/vpp --tenants 1000 --connections 1000 --concurrency 64
            """
    )

    @OptionGroup var target: TargetOptions
    @OptionGroup var shape: RunShapeOptions
    @OptionGroup var tenantOptions: TenantOptions

    func execute(preparingTenantsWith preparer: any LoadTenantPreparing) async throws {
        try await runTenantMix(
            try CallMix(weights: [.counts: 1]),
            name: "counts",
            target: self.target,
            shape: self.shape,
            tenants: self.tenantOptions,
            preparer: preparer
        )
    }
}

/// Prepares the tenants (when the mix's calls need them) with `preparer`, warms up, then runs and reports the mix.
func runTenantMix(
    _ mix: CallMix,
    name: String,
    target: TargetOptions,
    shape: RunShapeOptions,
    tenants options: TenantOptions,
    preparer: any LoadTenantPreparing
) async throws {
    var logger = Logger(label: "vpp-load.\(name)")
    logger.logLevel = .warning
    var tenants: [LoadTenant] = []
    if mix.needsTenantData {
        guard let url = options.databaseURL else {
            throw ValidationError("These calls need prepared tenants: give --database-url (the server's database).")
        }
        let started = ContinuousClock.now
        tenants = try await preparer.prepareTenants(
            LoadTenantRequest(
                operatorClient: target.clientConfiguration(),
                databaseURL: url,
                count: options.tenants,
                assetsPerTenant: options.appsPerTenant,
                withAssignments: mix.weights[.assign] != nil,
                namePrefix: options.namePrefix
            ),
            logger: logger
        )
        if !target.json {
            print(
                "prepared \(tenants.count) tenants in \(String(format: "%.1f", (ContinuousClock.now - started).inSeconds)) s"
            )
        }
    }
    let workload = MixWorkload(mix: mix, tenants: tenants, name: name == "mix" ? "mix \(mix.description)" : name)
    if let warmup = shape.warmupDuration, warmup > .zero {
        var plan = try shape.plan(callTimeout: target.callTimeout)
        plan.bound = .duration(warmup)
        _ = try await LoadRunner(client: target.clientConfiguration(), apiKeys: tenants.map(\.apiKey)).run(
            workload,
            plan: plan
        )
    }
    try await target.runAndReport(
        workload,
        plan: try shape.plan(callTimeout: target.callTimeout),
        apiKeys: tenants.map(\.apiKey)
    )
}
