import Crypto
public import Foundation

/// Seals VPP token files at rest with AES-256-GCM (issue: tokens are secrets).
///
/// The key comes from configuration (`VPP_TOKEN_KEY` or `VPP_TOKEN_KEY_FILE`; the local run generates one). Each sealed
/// value is bound to its tenant and token id as authenticated data, so a ciphertext copied onto another row (or into
/// another tenant) does not open. `keyID` (the first 8 hex digits of the key's SHA-256) is stored beside each value, so
/// a wrong key is reported as such instead of as corrupt data, and keys can be rotated later.
public struct TokenCipher: Sendable {
    private let keyBytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }
    /// Names the key without revealing it.
    public let keyID: String

    /// - Parameter keyBytes: exactly 32 bytes.
    public init(keyBytes: some Collection<UInt8>) throws(TokenCipherError) {
        guard keyBytes.count == 32 else { throw .badKey("the token key must be 32 bytes; it is \(keyBytes.count)") }
        self.keyBytes = Array(keyBytes)
        self.keyID = SHA256.hash(data: Array(keyBytes)).prefix(4).map { String(format: "%02x", $0) }.joined()
    }

    /// Reads a key written as Base64 text (what `generateKeyText()` writes), whitespace ignored.
    public init(base64Key text: String) throws(TokenCipherError) {
        let trimmed = text.filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: trimmed) else {
            throw .badKey("the token key is not Base64 text (generate one with: head -c 32 /dev/urandom | base64)")
        }
        try self.init(keyBytes: data)
    }

    /// A fresh random key as Base64 text.
    public static func generateKeyText() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    /// Seals `plaintext` for one token of one tenant; the answer is Base64 text.
    public func seal(_ plaintext: String, tenantID: UUID, tokenID: UUID) throws(TokenCipherError) -> String {
        do {
            let box = try AES.GCM.seal(
                Data(plaintext.utf8),
                using: key,
                authenticating: Self.context(tenantID, tokenID)
            )
            guard let combined = box.combined else { throw TokenCipherError.cannotOpen("sealing produced no output") }
            return combined.base64EncodedString()
        } catch let error as TokenCipherError {
            throw error
        } catch {
            throw .cannotOpen("sealing failed")
        }
    }

    /// Opens what `seal` made for the same tenant and token.
    public func open(_ sealed: String, keyID: String, tenantID: UUID, tokenID: UUID) throws(TokenCipherError) -> String
    {
        guard keyID == self.keyID else {
            throw .wrongKey("the token was sealed with key \(keyID); this server has key \(self.keyID)")
        }
        guard let combined = Data(base64Encoded: sealed), let box = try? AES.GCM.SealedBox(combined: combined),
            let data = try? AES.GCM.open(box, using: key, authenticating: Self.context(tenantID, tokenID))
        else { throw .cannotOpen("the stored token does not open with this key for this token") }
        return String(decoding: data, as: UTF8.self)
    }

    private static func context(_ tenantID: UUID, _ tokenID: UUID) -> Data {
        Data("vpp-token:\(tenantID.lowercasedText):\(tokenID.lowercasedText)".utf8)
    }
}

public enum TokenCipherError: Error, Sendable, Hashable, CustomStringConvertible {
    case badKey(String)
    case wrongKey(String)
    case cannotOpen(String)

    public var description: String {
        switch self {
        case .badKey(let message), .wrongKey(let message), .cannotOpen(let message): message
        }
    }
}

extension TokenCipher: CustomStringConvertible, CustomReflectable {
    /// Never the key: only its id.
    public var description: String { "TokenCipher(keyID: \(keyID))" }
    public var customMirror: Mirror { Mirror(self, children: ["keyID": keyID], displayStyle: .struct) }
}
