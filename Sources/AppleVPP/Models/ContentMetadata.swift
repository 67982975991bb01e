/// One result of the content-metadata lookup. The simulator and this client use the public iTunes lookup's shape
/// (`resultCount` + `results[]` with `trackId`, `trackName`, `bundleId`, ...), which is what open-source MDMs read;
/// Apple's `contentMetadataLookup` URL from service config is queried with `id=` the same way.
public struct ContentMetadata: Codable, Hashable, Sendable {
    /// The adamId, as a number.
    public var trackId: Int
    public var trackName: String?
    public var bundleId: String?
    /// `software`, `mac-software` or `ebook`.
    public var kind: String?
    public var version: String?
    public var artworkUrl512: String?
    public var supportedDevices: [String]?

    public init(
        trackId: Int,
        trackName: String? = nil,
        bundleId: String? = nil,
        kind: String? = nil,
        version: String? = nil,
        artworkUrl512: String? = nil,
        supportedDevices: [String]? = nil
    ) {
        self.trackId = trackId
        self.trackName = trackName
        self.bundleId = bundleId
        self.kind = kind
        self.version = version
        self.artworkUrl512 = artworkUrl512
        self.supportedDevices = supportedDevices
    }

    public var adamId: String { String(trackId) }
}

/// The content-metadata lookup's answer. An adamId the store does not know publicly (a custom B2B app) is simply
/// absent from `results`.
public struct ContentMetadataLookupResponse: Codable, Hashable, Sendable {
    public var resultCount: Int
    public var results: [ContentMetadata]

    public init(results: [ContentMetadata]) {
        self.resultCount = results.count
        self.results = results
    }
}
