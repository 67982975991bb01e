/// Splits large writes into requests within the limits from service config.
///
/// Associate and disassociate are a cross product (assets × subjects), so both sides are chunked. Users and serial
/// numbers always go in separate requests: Apple's example mixes them, but Fleet reports Apple accepts only one kind
/// per request, and sending them apart is valid either way.
public enum AppleVPPBatching {
    /// Requests for associate/disassociate: at most `maxAssets` assets and `maxClientUserIds` users or
    /// `maxSerialNumbers` serial numbers each. Duplicates are dropped (Apple refuses them with 9703–9705).
    public static func manageAssetsRequests(
        assets: [AssetReference],
        clientUserIds: [String] = [],
        serialNumbers: [String] = [],
        limits: ServiceLimits
    ) -> [ManageAssetsRequest] {
        let assetChunks = unique(assets).chunked(into: limits.maxAssets)
        let userChunks = unique(clientUserIds).chunked(into: limits.maxClientUserIds)
        let serialChunks = unique(serialNumbers).chunked(into: limits.maxSerialNumbers)
        var requests: [ManageAssetsRequest] = []
        for assetChunk in assetChunks {
            for users in userChunks {
                requests.append(ManageAssetsRequest(assets: assetChunk, clientUserIds: users))
            }
            for serials in serialChunks {
                requests.append(ManageAssetsRequest(assets: assetChunk, serialNumbers: serials))
            }
        }
        return requests
    }

    /// Requests for revoke: at most `maxRevokeClientUserIds` users or `maxRevokeSerialNumbers` devices each.
    public static func revokeRequests(
        clientUserIds: [String] = [],
        serialNumbers: [String] = [],
        limits: ServiceLimits
    ) -> [RevokeAssetsRequest] {
        unique(clientUserIds).chunked(into: limits.maxRevokeClientUserIds).map {
            RevokeAssetsRequest(clientUserIds: $0)
        }
            + unique(serialNumbers).chunked(into: limits.maxRevokeSerialNumbers).map {
                RevokeAssetsRequest(serialNumbers: $0)
            }
    }

    /// Requests for users/create, update and retire: at most `maxUsers` users each, one entry per `clientUserId`
    /// (the last one wins, as a later edit would).
    public static func manageUsersRequests(users: [RequestUser], limits: ServiceLimits) -> [ManageUsersRequest] {
        var lastIndex: [String: Int] = [:]
        for (index, user) in users.enumerated() { lastIndex[user.clientUserId] = index }
        let deduplicated = users.enumerated().filter { lastIndex[$0.element.clientUserId] == $0.offset }.map(\.element)
        return deduplicated.chunked(into: limits.maxUsers).map { ManageUsersRequest(users: $0) }
    }

    static func unique<T: Hashable>(_ values: [T]) -> [T] {
        var seen = Set<T>()
        return values.filter { seen.insert($0).inserted }
    }
}

extension Array {
    func chunked(into size: Int) -> [[Element]] {
        precondition(size > 0, "chunk size must be positive")
        return stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
