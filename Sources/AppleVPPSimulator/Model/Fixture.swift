public import AppleVPP

/// The JSON a simulator starts from (`vpp-apple-sim --fixture FILE`, `POST /_control/locations`). Every field but
/// a location's `uId`... may be left out; docs/apple-simulator.md has an example.
public struct SimulatorFixture: Codable, Sendable {
    /// Apps the public content-metadata lookup knows. Custom B2B apps are simply not listed.
    public var publicApps: [ContentMetadata]?
    public var locations: [Location]?

    public init(publicApps: [ContentMetadata]? = nil, locations: [Location]? = nil) {
        self.publicApps = publicApps
        self.locations = locations
    }

    /// An organisational unit (location) with its own token(s), library and users.
    public struct Location: Codable, Sendable {
        /// Generated when absent.
        public var uId: String?
        public var locationName: String?
        public var orgName: String?
        public var countryISO2ACode: String?
        public var defaultPlatform: String?
        public var websiteURL: String?
        /// Set when another MDM already claims the location's token.
        public var mdmInfo: MDMInfo?
        public var assets: [Asset]?
        /// Users already there (created by another MDM, say).
        public var users: [User]?
        /// Assignments already there; they count against the assets' licenses.
        public var assignments: [AppleVPP.Assignment]?
        /// Tokens to accept; one valid for a year is issued when none is given.
        public var tokens: [Token]?

        public init(
            uId: String? = nil,
            locationName: String? = nil,
            orgName: String? = nil,
            countryISO2ACode: String? = nil,
            defaultPlatform: String? = nil,
            websiteURL: String? = nil,
            mdmInfo: MDMInfo? = nil,
            assets: [Asset]? = nil,
            users: [User]? = nil,
            assignments: [AppleVPP.Assignment]? = nil,
            tokens: [Token]? = nil
        ) {
            self.uId = uId
            self.locationName = locationName
            self.orgName = orgName
            self.countryISO2ACode = countryISO2ACode
            self.defaultPlatform = defaultPlatform
            self.websiteURL = websiteURL
            self.mdmInfo = mdmInfo
            self.assets = assets
            self.users = users
            self.assignments = assignments
            self.tokens = tokens
        }
    }

    public struct Asset: Codable, Sendable {
        public var adamId: String
        public var pricingParam: PricingParam?
        public var productType: ProductType?
        /// Licenses bought; ignored for an unlimited asset.
        public var totalCount: Int?
        public var retiredCount: Int?
        public var deviceAssignable: Bool?
        public var revocable: Bool?
        /// A free app with unlimited licenses.
        public var unlimited: Bool?
        public var supportedPlatforms: [String]?

        public init(
            adamId: String,
            pricingParam: PricingParam? = nil,
            productType: ProductType? = nil,
            totalCount: Int? = nil,
            retiredCount: Int? = nil,
            deviceAssignable: Bool? = nil,
            revocable: Bool? = nil,
            unlimited: Bool? = nil,
            supportedPlatforms: [String]? = nil
        ) {
            self.adamId = adamId
            self.pricingParam = pricingParam
            self.productType = productType
            self.totalCount = totalCount
            self.retiredCount = retiredCount
            self.deviceAssignable = deviceAssignable
            self.revocable = revocable
            self.unlimited = unlimited
            self.supportedPlatforms = supportedPlatforms
        }
    }

    public struct User: Codable, Sendable {
        public var clientUserId: String
        public var email: String?
        /// `Registered` (default), `Associated` or `Retired`.
        public var status: UserStatus?

        public init(clientUserId: String, email: String? = nil, status: UserStatus? = nil) {
            self.clientUserId = clientUserId
            self.email = email
            self.status = status
        }
    }

    public struct Token: Codable, Sendable {
        /// The secret inside the token; random when absent.
        public var token: String?
        /// Apple's format, e.g. `2030-11-08T22:33:22+0000`; a year from start when absent.
        public var expDate: String?

        public init(token: String? = nil, expDate: String? = nil) {
            self.token = token
            self.expDate = expDate
        }
    }
}
