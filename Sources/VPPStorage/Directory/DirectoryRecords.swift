public import Foundation

/// A user of the tenant's identity directory, keyed by the tenant's own `externalID`.
public struct DirectoryUser: Sendable, Hashable {
    public var id: UUID
    public var externalID: String
    public var email: String
    /// The Apple ID or Managed Apple ID (R19).
    public var appleID: String
    public var displayName: String
    /// R20: a policy disables the App Store app for this user, so user licensing cannot reach them.
    public var appStoreDisabled: Bool
    /// Devices this user owns.
    public var deviceCount: Int
    public var createdAt: Date
    public var updatedAt: Date
    /// The user at Apple's VPP service through this service's tokens (R19, R20): nil (never needed a user
    /// license), "Pending" (to register), "Registered" (invited), "Associated" (accepted), "Retired", "Failed".
    public var vppStatus: String?
    /// R20: while invited ("Registered"), the link that accepts Apple's invitation.
    public var invitationURL: String = ""
}

/// What an upsert says about one user.
public struct DirectoryUserInput: Sendable, Hashable {
    public var externalID: String
    public var email: String
    public var appleID: String
    public var displayName: String
    public var appStoreDisabled: Bool

    public init(
        externalID: String,
        email: String = "",
        appleID: String = "",
        displayName: String = "",
        appStoreDisabled: Bool = false
    ) {
        self.externalID = externalID
        self.email = email
        self.appleID = appleID
        self.displayName = displayName
        self.appStoreDisabled = appStoreDisabled
    }
}

/// How a device was enrolled. The raw values are the stored ones.
public enum DeviceEnrollment: String, Sendable, Hashable, CaseIterable {
    /// Enrolled by or for a user: user licensing reaches it through its owner.
    case userAffiliated = "user_affiliated"
    /// R18: automated device enrollment (DEP); no user affinity, device targeting only.
    case automated
    /// R18: Apple Configurator; no user affinity, device targeting only.
    case configurator

    /// R18: whether the device may have an owner whose user licenses reach it.
    public var hasUserAffinity: Bool { self == .userAffiliated }
}

/// A device the tenant's enrollment knows, keyed by its serial number.
public struct DirectoryDevice: Sendable, Hashable {
    public var id: UUID
    public var serialNumber: String
    /// The owner's external id; nil for a device without an owner.
    public var ownerExternalID: String?
    public var enrollment: DeviceEnrollment
    /// R22: the built-in Books app is present.
    public var booksAppPresent: Bool
    public var name: String
    public var model: String
    public var osVersion: String
    public var createdAt: Date
    public var updatedAt: Date
}

/// What an upsert says about one device.
public struct DirectoryDeviceInput: Sendable, Hashable {
    public var serialNumber: String
    /// The owner's external id; empty for none.
    public var ownerExternalID: String
    /// nil when the caller did not say (refused for that entry).
    public var enrollment: DeviceEnrollment?
    public var booksAppPresent: Bool
    public var name: String
    public var model: String
    public var osVersion: String

    public init(
        serialNumber: String,
        ownerExternalID: String = "",
        enrollment: DeviceEnrollment?,
        booksAppPresent: Bool = true,
        name: String = "",
        model: String = "",
        osVersion: String = ""
    ) {
        self.serialNumber = serialNumber
        self.ownerExternalID = ownerExternalID
        self.enrollment = enrollment
        self.booksAppPresent = booksAppPresent
        self.name = name
        self.model = model
        self.osVersion = osVersion
    }
}

/// A group of users or of devices, the target of assignments (R13, R14).
public struct DirectoryGroup: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case user
        /// R14: only where the tenant may assign to device groups.
        case device
    }

    public var id: UUID
    public var externalID: String
    public var name: String
    public var kind: Kind
    public var memberCount: Int
    public var createdAt: Date
    public var updatedAt: Date
}

/// Looks an entry up by this server's id or by the tenant's key (external id, serial number).
public enum DirectoryLookup: Sendable, Hashable {
    case id(UUID)
    case key(String)
}

/// Why one entry of a bulk call was refused; the call's other entries are applied.
public struct DirectoryEntryError: Sendable, Hashable {
    /// The entry's index in the request.
    public var index: Int
    public var key: String
    public var message: String

    public init(index: Int, key: String, message: String) {
        self.index = index
        self.key = key
        self.message = message
    }
}

/// What a bulk upsert did.
public struct DirectoryUpsertSummary: Sendable, Hashable {
    public var created = 0
    public var updated = 0
    public var unchanged = 0
    public var errors: [DirectoryEntryError] = []

    public init() {}
}

/// What a delete by keys did. Each distinct key counts once.
public struct DirectoryDeleteSummary: Sendable, Hashable {
    public var deleted = 0
    public var notFound = 0

    public init() {}
}

/// What adding or removing group members did: `changed` members were added (removed), `unchanged` already were
/// (were not) members.
public struct DirectoryMembershipSummary: Sendable, Hashable {
    public var changed = 0
    public var unchanged = 0
    public var errors: [DirectoryEntryError] = []

    public init() {}
}
