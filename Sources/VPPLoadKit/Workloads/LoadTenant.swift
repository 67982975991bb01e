public import Logging
public import VPPClient

/// One tenant a load run calls as: its key, and the ids its calls need.
public struct LoadTenant: Sendable, Equatable {
    public var tenantID: String
    /// The tenant's API key (secret); each connection of the run authenticates with one tenant's key.
    public var apiKey: String
    /// Apps of the tenant's token, with license counts, for GetLicenseCounts.
    public var assetIDs: [String]
    /// An assignment of the first app to an empty user group, which `assign` calls switch between AVAILABLE and
    /// REQUIRED; nil when the run makes no assignment writes.
    public var assignmentID: String?

    public init(tenantID: String, apiKey: String, assetIDs: [String], assignmentID: String?) {
        self.tenantID = tenantID
        self.apiKey = apiKey
        self.assetIDs = assetIDs
        self.assignmentID = assignmentID
    }
}

/// What a `mix` or `counts` run asks of the tenants it calls as (`--tenants`, `--apps-per-tenant`, `--database-url`,
/// `--name-prefix`): made over the operator client, each with a token and apps stored in the server's database.
public struct LoadTenantRequest: Sendable {
    /// The run's target with the operator key, for CreateTenant.
    public var operatorClient: ClientConfiguration
    /// The server's database (postgres://…), where each tenant's token and apps are stored as a sync would.
    public var databaseURL: String
    public var count: Int
    public var assetsPerTenant: Int
    /// Whether each tenant gets the group and assignment that `assign` calls switch.
    public var withAssignments: Bool
    /// The tenants' display names are this and a number from 1.
    public var namePrefix: String
}

/// Prepares the tenants of a `mix` or `counts` run. This module drives the RPC port only; the preparer, which writes
/// tokens and apps straight into the database, is VPPBenchKit's and is handed to the subcommand by the root command.
public protocol LoadTenantPreparing: Sendable {
    func prepareTenants(_ request: LoadTenantRequest, logger: Logger) async throws -> [LoadTenant]
}
