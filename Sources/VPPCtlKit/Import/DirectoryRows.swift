import Foundation
public import VPPProto

/// Turns rows of a CSV or JSON file into DirectoryService inputs, checking each value before anything is sent.
public enum DirectoryRows {
    /// The per-call limit of the proto (docs/directory.md), which the server enforces.
    public static let batchSize = 5000

    public static let userColumns: Set<String> = [
        "external_id", "email", "apple_id", "display_name", "app_store_disabled", "groups",
    ]
    public static let deviceColumns: Set<String> = [
        "serial_number", "owner_external_id", "enrollment", "books_app_present", "name", "model", "os_version",
        "groups",
    ]
    /// Fields of `users list --json` / `devices list --json` output that are not input: accepted and ignored, so a
    /// list's output can be imported elsewhere.
    public static let outputOnlyColumns: Set<String> = [
        "id", "vpp_state", "invitation_url", "device_count", "created_at", "updated_at",
    ]

    /// A row's `groups` column: group external ids separated by `;` or spaces.
    static func groups(_ row: RecordFile.Row) -> [String] {
        (row.fields["groups"] ?? "").split(whereSeparator: { $0 == ";" || $0 == " " }).map(String.init)
    }

    public static func users(_ file: RecordFile) throws(CtlError) -> [(input: VppV1.UserInput, groups: [String])] {
        var result: [(VppV1.UserInput, [String])] = []
        for row in file.rows {
            let externalID = row.fields["external_id"]?.trimmingCharacters(in: .whitespaces) ?? ""
            guard !externalID.isEmpty else {
                throw CtlError.badInput(
                    "\(file.path), \(row.location): external_id is empty",
                    hint: "Every user needs its directory id in external_id."
                )
            }
            let user = VppV1.UserInput(
                externalId: externalID,
                email: row.fields["email"] ?? "",
                appleId: row.fields["apple_id"] ?? "",
                displayName: row.fields["display_name"] ?? "",
                appStoreDisabled: try RecordFile.bool(
                    row.fields["app_store_disabled"],
                    row: row,
                    column: "app_store_disabled",
                    path: file.path
                )
            )
            result.append((user, Self.groups(row)))
        }
        return result
    }

    public static func devices(_ file: RecordFile) throws(CtlError) -> [(input: VppV1.DeviceInput, groups: [String])] {
        var result: [(VppV1.DeviceInput, [String])] = []
        for row in file.rows {
            var device = VppV1.DeviceInput(
                serialNumber: row.fields["serial_number"]?.trimmingCharacters(in: .whitespaces) ?? ""
            )
            guard !device.serialNumber.isEmpty else {
                throw CtlError.badInput(
                    "\(file.path), \(row.location): serial_number is empty",
                    hint: "Every device needs its serial number."
                )
            }
            device.ownerExternalId = row.fields["owner_external_id"] ?? ""
            let enrollment = row.fields["enrollment"] ?? ""
            if enrollment.isEmpty {
                // A device with an owner is user-affiliated; without one, automated enrollment (R18) is the common case.
                device.enrollment = device.ownerExternalId.isEmpty ? .automated : .userAffiliated
            } else {
                let name = enrollment.lowercased().replacingOccurrences(of: "enrollment_kind_", with: "")
                guard let kind = Choice<VppV1.EnrollmentKind>(argument: name) else {
                    throw CtlError.badInput(
                        "\(file.path), \(row.location): enrollment \"\(enrollment)\" is not one of "
                            + Choice<VppV1.EnrollmentKind>.allValueStrings.joined(separator: ", "),
                        hint: "Write one of those, or leave it empty."
                    )
                }
                device.enrollment = kind.value
            }
            // R22: a device has the Books app unless the file says otherwise.
            let books = row.fields["books_app_present"] ?? ""
            device.booksAppPresent =
                books.isEmpty
                ? true : try RecordFile.bool(books, row: row, column: "books_app_present", path: file.path)
            device.name = row.fields["name"] ?? ""
            device.model = row.fields["model"] ?? ""
            device.osVersion = row.fields["os_version"] ?? ""
            result.append((device, Self.groups(row)))
        }
        return result
    }

    /// Member keys from a file: the `external_id` or `serial_number` column (or `key`).
    public static func memberKeys(_ file: RecordFile) throws(CtlError) -> [String] {
        try file.rows.map { row throws(CtlError) -> String in
            let key = row.fields["external_id"] ?? row.fields["serial_number"] ?? row.fields["key"] ?? ""
            guard !key.isEmpty else {
                throw CtlError.badInput(
                    "\(file.path), \(row.location): no external_id or serial_number",
                    hint: "Give users' external ids in an external_id column, devices' serial numbers in serial_number."
                )
            }
            return key
        }
    }
}

/// Splits a list into the batches a bulk call takes.
func batches<T>(_ items: [T], size: Int = DirectoryRows.batchSize) -> [ArraySlice<T>] {
    stride(from: 0, to: items.count, by: size).map { items[$0..<min($0 + size, items.count)] }
}
