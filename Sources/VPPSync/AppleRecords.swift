public import AppleVPP
public import VPPStorage

extension SyncedAsset {
    /// An asset as Apple lists it (`GET /assets`), with its public metadata when the lookup knows it.
    public init(_ asset: ResponseAsset, metadata: ContentMetadata?) {
        self.init(
            adamID: asset.adamId,
            pricingParam: asset.pricingParam.rawValue,
            productType: asset.productType.rawValue,
            name: metadata?.trackName ?? "",
            bundleID: metadata?.bundleId ?? "",
            artworkURL: metadata?.artworkUrl512 ?? "",
            platforms: asset.supportedPlatforms ?? [],
            deviceAssignable: asset.deviceAssignable,
            revocable: asset.revocable,
            unlimited: asset.isUnlimited,
            totalCount: asset.totalCount,
            assignedCount: asset.assignedCount,
            availableCount: asset.availableCount,
            retiredCount: asset.retiredCount
        )
    }
}

extension SyncedUser {
    /// A user as Apple reports it (`GET /users`, USER_MANAGEMENT, USER_ASSOCIATED). R20: a Registered user gets the
    /// link that accepts the invitation, from service config's template (`invitationTemplate`).
    public init(_ user: ResponseUser, invitationTemplate: String?) {
        var invitation = ""
        if user.status == .registered, let template = invitationTemplate {
            invitation = AppleVPPClient.invitationURL(template: template, inviteCode: user.inviteCode ?? "") ?? ""
        }
        self.init(
            clientUserID: user.clientUserId,
            email: user.email ?? "",
            status: user.status.rawValue,
            idHash: user.idHash ?? "",
            inviteCode: user.inviteCode ?? "",
            invitationURL: invitation
        )
    }
}
