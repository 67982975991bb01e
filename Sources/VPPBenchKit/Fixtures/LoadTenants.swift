import Foundation
import Logging
import VPPClient
import VPPLoadKit
import VPPPostgres
import VPPProto
import VPPStorage

/// Prepares `count` tenants for a load run, the way the product gets them: each tenant is created over the operator
/// RPC (with an initial key), its VPP token and the token's apps are written through the storage layer as a sync
/// would (`TokenStore.insert`, `SyncStore.applyAssets`, as `vpp-load sync` does, so no Apple is needed), and the group
/// and assignment that `assign` calls change are made over the tenant's own RPCs.
///
/// The tokens' first sync is a month away and their secret is sealed with a key of this run, so the server's
/// scheduler leaves them alone during the run.
struct LoadTenantPreparer {
    var operatorClient: ClientConfiguration
    var database: PostgresConfiguration
    var count: Int
    var assetsPerTenant: Int
    var withAssignments: Bool
    var namePrefix: String
    var concurrency = 8

    func prepare(logger: Logger) async throws -> [LoadTenant] {
        var database = self.database
        database.poolSize = max(2, self.concurrency)
        let pool = PostgresPool(configuration: database, logger: logger)
        let storage = Storage(pool: pool, logger: logger)
        let operatorClient = VPPClient(self.operatorClient)
        do {
            let welcome = try await operatorClient.connect()
            guard welcome.principalKind == "operator" else {
                throw LoadError(
                    "Preparing tenants needs an operator key (VPP_API_KEY); the key given is a \(welcome.principalKind) key."
                )
            }
            let tokens = TokenStore(
                storage: storage,
                cipher: try TokenCipher(base64Key: TokenCipher.generateKeyText()),
                logger: logger
            )
            let tenants = try await withThrowingTaskGroup(of: (Int, LoadTenant).self) { group in
                var results: [LoadTenant?] = Array(repeating: nil, count: self.count)
                for index in 0..<self.count {
                    if index >= self.concurrency, let (done, tenant) = try await group.next() { results[done] = tenant }
                    group.addTask {
                        (
                            index,
                            try await self.prepareOne(
                                index,
                                operatorClient: operatorClient,
                                storage: storage,
                                tokens: tokens
                            )
                        )
                    }
                }
                for try await (done, tenant) in group { results[done] = tenant }
                return results.compactMap { $0 }
            }
            await operatorClient.close()
            await pool.shutdown()
            return tenants
        } catch {
            await operatorClient.close()
            await pool.shutdown()
            throw error
        }
    }

    private func prepareOne(_ index: Int, operatorClient: VPPClient, storage: Storage, tokens: TokenStore) async throws
        -> LoadTenant
    {
        var request = VppV1.CreateTenantRequest()
        request.displayName = "\(self.namePrefix)\(index + 1)"
        request.initialKeyName = "vpp-load"
        let created = try await operatorClient.call(VppV1.OperatorService.CreateTenant.self, request)
        guard let tenantID = UUID(uuidString: created.tenant?.id ?? ""), let secret = created.initialKey?.secret,
            !secret.isEmpty
        else {
            throw LoadError("CreateTenant answered without a tenant id or an initial key.")
        }

        let now = Date()
        let token = try await tokens.insert(
            tenantID: tenantID,
            NewToken(
                displayName: "vpp-load",
                appleID: "load@example.com",
                accountType: .business,
                organizationName: "vpp-load",
                locationUID: "vpp-load-" + UUID().uuidString.lowercased(),
                locationName: "vpp-load",
                countryCode: "US",
                expiresAt: now.addingTimeInterval(300 * 86_400),
                credential: "vpp-load token \(index)",
                firstSyncAt: now.addingTimeInterval(30 * 86_400)
            )
        )
        let assets = (0..<self.assetsPerTenant).map { number in
            SyncedAsset(
                adamID: String(4_000_000_000 + number),
                pricingParam: "STDQ",
                productType: "App",
                name: "Load App \(number)",
                bundleID: "load.app\(number)",
                artworkURL: "",
                platforms: ["iOS"],
                deviceAssignable: true,
                revocable: true,
                unlimited: false,
                totalCount: 100,
                assignedCount: number % 100,
                availableCount: 100 - number % 100,
                retiredCount: 0
            )
        }
        try await SyncStore(storage: storage).applyAssets(
            tenantID: tenantID,
            tokenID: token.id,
            assets: assets,
            skipped: [],
            at: now
        )
        let assetIDs = try await CatalogStore(storage: storage).list(
            tenantID: tenantID,
            productType: "App",
            tokenID: token.id,
            query: nil,
            onlyAvailable: false,
            pageSize: self.assetsPerTenant,
            after: nil
        ).assets.map { $0.id.uuidString.lowercased() }
        guard !assetIDs.isEmpty else { throw LoadError("The tenant's apps were not stored.") }

        var assignmentID: String?
        if self.withAssignments {
            var configuration = self.operatorClient
            configuration.apiKey = secret
            let client = VPPClient(configuration)
            do {
                var group = VppV1.CreateGroupRequest()
                group.externalId = "vpp-load"
                group.name = "vpp-load (empty)"
                group.kind = .user
                let groupID = try await client.call(VppV1.DirectoryService.CreateGroup.self, group).id
                var assignment = VppV1.CreateAssignmentRequest()
                assignment.assetId = assetIDs[0]
                assignment.groupId = groupID
                assignment.action = .available
                assignment.licenseType = .user
                assignmentID = try await client.call(VppV1.AssignmentService.CreateAssignment.self, assignment).id
                await client.close()
            } catch {
                await client.close()
                throw error
            }
        }
        return LoadTenant(
            tenantID: tenantID.uuidString.lowercased(),
            apiKey: secret,
            assetIDs: assetIDs,
            assignmentID: assignmentID
        )
    }
}

/// What `vpp-load mix` and `counts` are handed to prepare their tenants with (`VPPLoadCommand.runMain`): a
/// `LoadTenantPreparer` on the request's database.
struct DatabaseLoadTenants: LoadTenantPreparing {
    func prepareTenants(_ request: LoadTenantRequest, logger: Logger) async throws -> [LoadTenant] {
        try await LoadTenantPreparer(
            operatorClient: request.operatorClient,
            database: try PostgresConfiguration(url: request.databaseURL),
            count: request.count,
            assetsPerTenant: request.assetsPerTenant,
            withAssignments: request.withAssignments,
            namePrefix: request.namePrefix
        ).prepare(logger: logger)
    }
}
