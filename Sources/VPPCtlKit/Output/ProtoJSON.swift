import Foundation
public import VPPProto

/// Turns any generated message into JSON with the proto's own field names (snake_case), by reflection.
///
/// One generic encoder instead of 56 hand-written ones: the generated structs hold exactly the proto's fields as
/// stored properties, in the proto's order, so a field's Swift name (`appleId`) maps back to its proto name
/// (`apple_id`) and the JSON stays stable as long as the proto does. Enums print their proto value name without the
/// enum's prefix (`TOKEN_STATE_EXPIRING_SOON` prints `"EXPIRING_SOON"`); timestamps print as RFC 3339 UTC; wrapper
/// messages (`StringValue`, ...) print their value; bytes print as Base64; unset messages print `null`.
public enum ProtoJSON {
    public static func encode(_ message: some ProtoMessage) -> JSONValue {
        self.value(of: message)
    }

    static func value(of value: Any) -> JSONValue {
        switch value {
        case let timestamp as VppV1.Timestamp: return .string(self.rfc3339(timestamp))
        case let wrapped as VppV1.StringValue: return .string(wrapped.value)
        case let wrapped as VppV1.BoolValue: return .bool(wrapped.value)
        case let wrapped as VppV1.UInt32Value: return .uint(UInt64(wrapped.value))
        case let wrapped as VppV1.Int64Value: return .int(wrapped.value)
        case let text as String: return .string(text)
        case let flag as Bool: return .bool(flag)
        case let bytes as [UInt8]: return .string(Data(bytes).base64EncodedString())
        case let number as Int: return .int(Int64(number))
        case let number as Int32: return .int(Int64(number))
        case let number as Int64: return .int(number)
        case let number as UInt32: return .uint(UInt64(number))
        case let number as UInt64: return .uint(number)
        default: break
        }
        let mirror = Mirror(reflecting: value)
        switch mirror.displayStyle {
        case .optional:
            guard let wrapped = mirror.children.first else { return .null }
            return self.value(of: wrapped.value)
        case .collection, .set:
            return .array(mirror.children.map { self.value(of: $0.value) })
        case .struct, .class:
            return .object(
                mirror.children.compactMap { child in
                    guard let label = child.label else { return nil }
                    return JSONValue.Field(snakeCase(label), self.value(of: child.value))
                }
            )
        case .enum:
            guard let payload = mirror.children.first else {
                return .string(screamingSnakeCase(String(describing: value)))
            }
            // `unrecognized(7)`: a number from a newer server prints as the number.
            if payload.label == "unrecognized" { return self.value(of: payload.value) }
            // A oneof case, e.g. GetEntryRequest.by = .key("x"): {"key": "x"}.
            return .object([JSONValue.Field(snakeCase(payload.label ?? "value"), self.value(of: payload.value))])
        default:
            return .string(String(describing: value))
        }
    }

    public static func rfc3339(_ timestamp: VppV1.Timestamp) -> String {
        let date = Date(timeIntervalSince1970: TimeInterval(timestamp.seconds))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02dZ",
            parts.year ?? 0,
            parts.month ?? 0,
            parts.day ?? 0,
            parts.hour ?? 0,
            parts.minute ?? 0,
            parts.second ?? 0
        )
    }
}

/// `appleId` → `apple_id`.
func snakeCase(_ name: String) -> String {
    var out = ""
    for character in name {
        if character.isUppercase {
            if !out.isEmpty { out += "_" }
            out += character.lowercased()
        } else {
            out.append(character)
        }
    }
    return out
}

/// `expiringSoon` → `EXPIRING_SOON`.
func screamingSnakeCase(_ name: String) -> String {
    snakeCase(name).uppercased()
}
