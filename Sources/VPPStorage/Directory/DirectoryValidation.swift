/// The directory's rules for text from clients, checked in Swift before anything reaches SQL, so each bad entry of a
/// bulk call can be reported by its index while the others are applied. Values are stored verbatim otherwise (they are
/// always bound as parameters, never spliced into SQL).
enum DirectoryValidation {
    /// Entries (or keys) per bulk call; more is INVALID_ARGUMENT for the whole call.
    static let maxEntriesPerCall = 5_000  // the contract in Protos/vpp/v1/directory.proto

    static let maxExternalIDLength = 256
    static let maxSerialNumberLength = 64
    static let maxEmailLength = 320
    static let maxDisplayNameLength = 256
    static let maxGroupNameLength = 200
    static let maxDeviceTextLength = 256

    /// Why `value` cannot be a key (external id, serial number) named `field`; nil when it can.
    static func keyProblem(_ value: String, field: String, maxLength: Int) -> String? {
        if value.unicodeScalars.allSatisfy({ $0.properties.isWhitespace }) {
            return "\(field) is empty; every entry needs one."
        }
        return self.textProblem(value, field: field, maxLength: maxLength)
    }

    /// Why `value` cannot be stored in `field`; nil when it can. Length counts characters, as PostgreSQL's
    /// `char_length` does for the columns' CHECKs.
    static func textProblem(_ value: String, field: String, maxLength: Int) -> String? {
        let length = value.unicodeScalars.count
        if length > maxLength {
            return "\(field) is \(length) characters long; at most \(maxLength) are allowed."
        }
        if let scalar = value.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            let code = "U+" + String(scalar.value, radix: 16, uppercase: true).leftPadded(to: 4)
            return "\(field) contains the control character \(code); remove control characters."
        }
        return nil
    }

    /// INVALID_ARGUMENT when a bulk call is larger than allowed.
    static func requireBatchSize(_ count: Int, field: String) throws {
        guard count <= self.maxEntriesPerCall else {
            throw StorageError.invalidArgument(
                "\(field) has \(count) entries; at most \(self.maxEntriesPerCall) are taken per call. Split the request.",
                field: field
            )
        }
    }

    /// The indexes of keys that occur more than once; each occurrence is refused, since the request does not say
    /// which one it means.
    static func duplicateIndexes(_ keys: [String], field: String) -> [Int: String] {
        var first: [String: Int] = [:]
        var duplicated: Set<String> = []
        for (index, key) in keys.enumerated() {
            if first[key] == nil { first[key] = index } else { duplicated.insert(key) }
        }
        guard !duplicated.isEmpty else { return [:] }
        var result: [Int: String] = [:]
        for (index, key) in keys.enumerated() where duplicated.contains(key) {
            result[index] = "This \(field) appears more than once in this request; send each entry once."
        }
        return result
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        self.count >= width ? self : String(repeating: "0", count: width - self.count) + self
    }
}

extension DirectoryEntryError {
    /// Keys are echoed back cut to a size that keeps an answer with many errors small.
    init(index: Int, rawKey: String, message: String) {
        self.init(index: index, key: String(rawKey.prefix(DirectoryValidation.maxExternalIDLength)), message: message)
    }
}
