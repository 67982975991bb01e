import Foundation

/// The calls a mixed load run can make.
public enum LoadCall: String, Sendable, CaseIterable, Codable {
    /// `/vpp.v1.SystemService/Ping` with a 32-byte payload: the RPC path with no storage.
    case ping
    /// `/vpp.v1.CatalogService/GetLicenseCounts` of one of the tenant's apps: one indexed row read.
    case counts
    /// `/vpp.v1.CatalogService/ListApps`, the first page of 20: a short index range read.
    case apps
    /// `/vpp.v1.AssignmentService/UpdateAssignment`, switching an assignment to an empty group between AVAILABLE and
    /// REQUIRED: a ledger write with its audit record and the push request.
    case assign

    /// Whether the call needs prepared tenants (a key, apps, an assignment).
    var needsTenantData: Bool { self != .ping }
}

/// A weighted mix of calls, parsed from `ping=1,counts=6,apps=2,assign=1`, and the order in which a run makes them.
public struct CallMix: Sendable, Equatable {
    /// The weight of each call that has one (0 weights are dropped).
    public let weights: [LoadCall: Int]
    /// One period of the run's calls: each call appears `weight` times, spread out evenly (smooth weighted
    /// round-robin), so that any window of calls has about the mix's proportions. Call i of a run is
    /// `schedule[i % schedule.count]`.
    public let schedule: [LoadCall]

    public init(weights: [LoadCall: Int]) throws(CallMixError) {
        let positive = weights.filter { $0.value > 0 }
        guard !positive.isEmpty else { throw CallMixError("Give at least one call a weight above 0.") }
        guard positive.values.allSatisfy({ $0 <= 1000 }) else { throw CallMixError("Weights go up to 1000.") }
        self.weights = positive
        self.schedule = Self.smoothOrder(positive)
    }

    /// Parses `name=weight` pairs separated by commas; names are the `LoadCall` cases.
    public static func parse(_ text: String) throws(CallMixError) -> CallMix {
        var weights: [LoadCall: Int] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let call = LoadCall(rawValue: parts[0].lowercased()) else {
                throw CallMixError(
                    "\"\(item)\" is not name=weight with a name among \(LoadCall.allCases.map(\.rawValue).joined(separator: ", "))."
                )
            }
            guard let weight = Int(parts[1]), weight >= 0 else {
                throw CallMixError("The weight of \(call.rawValue) must be a whole number from 0, not \"\(parts[1])\".")
            }
            guard weights[call] == nil else { throw CallMixError("\(call.rawValue) is given twice.") }
            weights[call] = weight
        }
        return try CallMix(weights: weights)
    }

    /// `ping=1,counts=6,…` in the cases' order: how reports name the mix.
    public var description: String {
        LoadCall.allCases.compactMap { call in self.weights[call].map { "\(call.rawValue)=\($0)" } }.joined(
            separator: ","
        )
    }

    public var needsTenantData: Bool { self.weights.keys.contains { $0.needsTenantData } }

    public func call(at index: Int) -> LoadCall { self.schedule[index % self.schedule.count] }

    /// nginx's smooth weighted round-robin: each step every call gains its weight, the one with the most credit goes
    /// next and pays the total back. Ties go to the earlier case, so the order is the same on every run.
    static func smoothOrder(_ weights: [LoadCall: Int]) -> [LoadCall] {
        let calls = LoadCall.allCases.filter { weights[$0] != nil }
        let total = calls.reduce(0) { $0 + weights[$1]! }
        var credit = Array(repeating: 0, count: calls.count)
        var order: [LoadCall] = []
        order.reserveCapacity(total)
        for _ in 0..<total {
            var best = 0
            for position in calls.indices {
                credit[position] += weights[calls[position]]!
                if credit[position] > credit[best] { best = position }
            }
            credit[best] -= total
            order.append(calls[best])
        }
        return order
    }
}

public struct CallMixError: Error, CustomStringConvertible, Equatable {
    public var description: String
    init(_ description: String) { self.description = description }
}
