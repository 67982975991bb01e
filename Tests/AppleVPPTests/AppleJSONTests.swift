import AppleVPP
import Foundation
import Testing

/// The models read Apple's own example documents (from shared/reference/apple-vpp-api.md), so the simulator and the
/// client, which share these types, agree with Apple and not only with each other.
@Suite("Models decode Apple's documented JSON")
struct AppleJSONTests {
    func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(json.utf8))
    }

    @Test func responseAsset() throws {
        let asset = try decode(
            ResponseAsset.self,
            #"{"adamId":"408709785","assignedCount":5000,"availableCount":10000,"deviceAssignable":true,"#
                + #""pricingParam":"STDQ","productType":"App","retiredCount":0,"revocable":true,"#
                + #""supportedPlatforms":["iOS"],"totalCount":15000}"#
        )
        #expect(asset.adamId == "408709785" && asset.pricingParam == .standard && asset.productType == .app)
        #expect(asset.availableCount == 10000 && !asset.isUnlimited)
    }

    @Test func manageAssetsRequestRoundTripsWithApplesFieldNames() throws {
        let json =
            #"{"assets":[{"adamId":"408709785"},{"adamId":"377298193"}],"#
            + #""clientUserIds":["client-1","client-2"],"serialNumbers":["serial-1"]}"#
        let request = try decode(ManageAssetsRequest.self, json)
        #expect(request.assets.map(\.adamId) == ["408709785", "377298193"])
        let encoded = String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
        for name in ["\"assets\"", "\"adamId\"", "\"clientUserIds\"", "\"serialNumbers\""] {
            #expect(encoded.contains(name))
        }
    }

    @Test func statusWithPartialFailure() throws {
        let status = try decode(
            StatusResponse.self,
            #"{"eventStatus":"FAILED","eventType":"ASSOCIATE","numCompleted":14,"numRequested":16,"#
                + #""failures":[{"errorNumber":9609,"errorMessage":"Registered user not found","#
                + #""errorInfo":{"clientUserIds":["client-4"]}}],"tokenExpirationDate":"2030-11-08T22:33:22+0000","#
                + #""uId":"2049025000431439"}"#
        )
        #expect(status.eventStatus == .failed && status.eventType == .associate)
        #expect(status.failures?.first?.errorInfo?.clientUserIds == ["client-4"])
    }

    @Test func unknownEnumerationValuesStillDecode() throws {
        let user = try decode(ResponseUser.self, #"{"clientUserId":"c","status":"Suspended"}"#)
        #expect(user.status.rawValue == "Suspended")
    }

    @Test func clientConfigRequestMatchesApplesExample() throws {
        let request = try decode(
            ClientConfigRequest.self,
            #"{"mdmInfo":{"id":"522d5c43","name":"Apple Configurator 2","metadata":"2.13.3"},"#
                + #""notificationAuthToken":"SUp3rS3Cr3t","notificationUrl":"https://www.next.com/notification","#
                + #""notificationTypes":["ASSET_COUNT","ASSET_MANAGEMENT","USER_MANAGEMENT","USER_ASSOCIATED"]}"#
        )
        #expect(request.mdmInfo?.name == "Apple Configurator 2")
        #expect(request.notificationTypes?.count == 4)
    }
}
