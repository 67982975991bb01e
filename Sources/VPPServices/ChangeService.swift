import Foundation
import VPPLicensing
import VPPProto
import VPPServer
public import VPPStorage
import VPPWire

/// The change feed over RPC (issue 19): ListChanges pages through a tenant's change log, WatchChanges replays it
/// from a cursor and then follows it live through the process's `ChangeFeedHub`. Protos/README.md "The change feed"
/// states the guarantees this keeps.
struct ChangeService: Sendable {
    let changeLog: ChangeLog
    let hub: ChangeFeedHub

    static let defaultPageSize = 100
    static let defaultHeartbeat: Duration = .seconds(30)
    /// Changes per replay read (the live side batches as they commit).
    static let replayBatch = 500

    func register(into router: inout RPCRouter) {
        typealias Changes = VppV1.ChangeService
        router.register(Changes.ListChanges.self, requires: .tenant) { request, context in
            let tenantID = try context.tenantID()
            let kinds = try Self.kinds(request.kinds)
            let pageSize = try Self.pageSize(request.pageSize)
            let cursor = try await self.startCursor(request.start, request.cursor, tenantID: tenantID)
            let page = try await self.changeLog.read(tenantID: tenantID, after: cursor, kinds: kinds, limit: pageSize)
            return VppV1.ChangeBatch(page.changes, cursor: page.next, head: page.head)
        }
        router.registerStream(Changes.WatchChanges.self, requires: .tenant) { request, context, stream in
            try await self.watch(request, context: context, stream: stream)
        }
    }

    private func watch(
        _ request: VppV1.WatchChangesRequest,
        context: CallContext,
        stream: ResponseStream<VppV1.ChangeBatch>
    ) async throws {
        let tenantID = try context.tenantID()
        let kinds = try Self.kinds(request.kinds)
        let heartbeat = try Self.heartbeat(request.heartbeatSeconds)
        var cursor = try await self.startCursor(request.start, request.cursor, tenantID: tenantID)

        // Replay what the log holds after the cursor, until caught up with its head.
        var head = try await self.replay(tenantID: tenantID, kinds: kinds, cursor: &cursor, until: nil, stream: stream)
        let subscription = try self.hub.subscribe(tenantID: tenantID, known: cursor)
        defer { subscription.continuation.finish() }
        // The hub's tail may have read past where the replay stopped: what lies between is read from the log.
        if subscription.start > cursor {
            head = try await self.replay(
                tenantID: tenantID,
                kinds: kinds,
                cursor: &cursor,
                until: subscription.start,
                stream: stream
            )
        }
        var lastSent = ContinuousClock.now
        for await batch in subscription.batches {
            defer { subscription.consumed(batch) }
            let fresh = batch.drop { $0.sequence <= cursor }
            if let last = fresh.last {
                cursor = last.sequence
                head = max(head, last.sequence)
                let matching = fresh.filter { kinds.contains($0.kind) }
                if !matching.isEmpty {
                    try await stream.send(VppV1.ChangeBatch(Array(matching), cursor: cursor, head: head))
                    lastSent = ContinuousClock.now
                    continue
                }
            }
            if ContinuousClock.now - lastSent >= heartbeat {
                try await stream.send(VppV1.ChangeBatch([], cursor: cursor, head: head))
                lastSent = ContinuousClock.now
            }
        }
        try Task.checkCancellation()
        if subscription.overflowed {
            throw RPCError(
                .resourceExhausted,
                "The stream was cut: \(self.hub.configuration.maxBufferedPerWatcher) changes were waiting for this client to read them (VPP_CHANGE_WATCH_BUFFER). Read faster, or resume with WatchChanges after cursor \(cursor).",
                details: [Self.detail("CHANGE_CONSUMER_TOO_SLOW", ["cursor": "\(cursor)"])]
            )
        }
        // The hub ended the stream for another reason (the tenant suspended or deleted): a read says why.
        _ = try await self.changeLog.bounds(tenantID: tenantID)
        throw RPCError.unavailable(
            "The change stream ended on the server; resume with WatchChanges after cursor \(cursor).",
            reason: "CHANGE_STREAM_ENDED"
        )
    }

    /// Sends the log's changes after `cursor` (up to its head, or past `until`), batch by batch; returns the head.
    private func replay(
        tenantID: UUID,
        kinds: Set<ChangeKind>,
        cursor: inout Int64,
        until: Int64?,
        stream: ResponseStream<VppV1.ChangeBatch>
    ) async throws -> Int64 {
        while true {
            let page = try await self.changeLog.read(
                tenantID: tenantID,
                after: cursor,
                kinds: kinds,
                limit: Self.replayBatch
            )
            cursor = page.next
            if !page.changes.isEmpty {
                try await stream.send(VppV1.ChangeBatch(page.changes, cursor: page.next, head: page.head))
            }
            if page.next >= (until ?? page.head) || page.next >= page.head { return page.head }
        }
    }

    private func startCursor(_ start: VppV1.ChangeStart, _ cursor: UInt64, tenantID: UUID) async throws -> Int64 {
        switch start {
        case .afterCursor:
            guard cursor <= UInt64(Int64.max) else {
                throw RPCError.invalidArgument("cursor \(cursor) is not a sequence number.", field: "cursor")
            }
            return Int64(cursor)
        case .now:
            try Self.noCursor(cursor)
            return try await self.changeLog.bounds(tenantID: tenantID).head
        case .oldest:
            try Self.noCursor(cursor)
            return try await self.changeLog.bounds(tenantID: tenantID).prunedThrough
        case .unrecognized(let value):
            throw RPCError.invalidArgument("start \(value) is not a ChangeStart.", field: "start")
        }
    }

    private static func noCursor(_ cursor: UInt64) throws {
        guard cursor == 0 else {
            throw RPCError.invalidArgument(
                "cursor is only read with start CHANGE_START_AFTER_CURSOR; leave it 0 with NOW or OLDEST.",
                field: "cursor"
            )
        }
    }

    static func kinds(_ kinds: [VppV1.ChangeKind]) throws -> Set<ChangeKind> {
        guard kinds.count <= 64 else {
            throw RPCError.invalidArgument("At most 64 kinds; leave kinds empty for every kind.", field: "kinds")
        }
        if kinds.isEmpty { return Set(ChangeKind.allCases) }
        return Set(
            try kinds.map { kind in
                guard let known = ChangeKind(kind) else {
                    throw RPCError.invalidArgument("kinds: \(kind) is not a ChangeKind.", field: "kinds")
                }
                return known
            }
        )
    }

    static func pageSize(_ size: UInt32) throws -> Int {
        if size == 0 { return Self.defaultPageSize }
        guard size <= ChangeLog.maxPageSize else {
            throw RPCError.invalidArgument("page_size is at most \(ChangeLog.maxPageSize).", field: "page_size")
        }
        return Int(size)
    }

    static func heartbeat(_ seconds: UInt32) throws -> Duration {
        if seconds == 0 { return Self.defaultHeartbeat }
        guard (1...300).contains(seconds) else {
            throw RPCError.invalidArgument(
                "heartbeat_seconds is between 1 and 300 (0: 30).",
                field: "heartbeat_seconds"
            )
        }
        return .seconds(Int(seconds))
    }

    static func detail(_ reason: String, _ metadata: [String: String]) -> RpcV1.ErrorDetail {
        var detail = RpcV1.ErrorDetail()
        detail.reason = reason
        detail.metadata = metadata.sorted { $0.key < $1.key }.map { RpcV1.KeyValue(key: $0.key, value: $0.value) }
        return detail
    }
}

extension ChangeKind {
    /// nil for UNSPECIFIED and unknown values.
    init?(_ kind: VppV1.ChangeKind) {
        guard let match = ChangeKind.allCases.first(where: { VppV1.ChangeKind($0) == kind }) else { return nil }
        self = match
    }
}

extension VppV1.ChangeKind {
    init(_ kind: ChangeKind) {
        switch kind {
        case .license: self = .license
        case .assignment: self = .assignment
        case .token: self = .token
        case .sync: self = .sync
        case .counts: self = .counts
        case .tokenExpiring: self = .tokenExpiring
        case .tokenClaimedElsewhere: self = .tokenClaimedElsewhere
        case .licensesExhausted: self = .licensesExhausted
        case .waitersServed: self = .waitersServed
        case .reclaimDone: self = .reclaimDone
        case .webhookDisabled: self = .webhookDisabled
        }
    }
}

extension VppV1.ChangeBatch {
    init(_ records: some Sequence<ChangeRecord>, cursor: Int64, head: Int64) {
        self.init()
        self.changes = records.map(VppV1.Change.init)
        self.cursor = UInt64(max(0, cursor))
        self.head = UInt64(max(0, head))
    }
}

extension VppV1.Change {
    /// The proto of one change-log entry: every state in it is mapped by the function the other RPCs use
    /// (`TargetState.of`, `TokenRecord.state`, `LedgerCounts`), so the feed and the reads agree.
    init(_ record: ChangeRecord) {
        self.init()
        let data = record.data
        self.sequence = UInt64(max(0, record.sequence))
        self.kind = VppV1.ChangeKind(record.kind)
        self.at = VppV1.Timestamp(record.at)
        self.tokenId = record.tokenID?.lowercasedText ?? ""
        self.assetId = record.assetID?.lowercasedText ?? ""
        self.adamId = data.adamID ?? ""
        self.productType = VppV1.ProductType(apple: data.productType ?? "")
        self.pricingParam = VppV1.PricingParam(apple: data.pricingParam ?? "")
        switch record.kind {
        case .license:
            self.license = VppV1.LicenseChange(data)
        case .assignment:
            var change = VppV1.AssignmentChange()
            change.assignmentId = data.assignmentID?.lowercasedText ?? ""
            change.groupId = data.groupID?.lowercasedText ?? ""
            change.action =
                switch data.action {
                case "required": .required
                case "available": .available
                case "uninstall": .uninstall
                default: .unspecified
                }
            change.licenseType = VppV1.LicenseType(data.licenseType)
            change.deleted = data.deleted ?? false
            self.assignment = change
        case .token, .tokenExpiring, .tokenClaimedElsewhere:
            self.token = VppV1.TokenChange(data, at: record.at)
        case .sync:
            var change = VppV1.SyncChange()
            change.jobId = data.jobID?.lowercasedText ?? ""
            change.result =
                switch data.result {
                case "succeeded": .succeeded
                case "failed": .failed
                case "cancelled": .cancelled
                default: .unspecified
                }
            change.error = data.error ?? ""
            change.finishedAt = data.finishedAt.map { VppV1.Timestamp(Date(timeIntervalSince1970: $0)) }
            change.apps = UInt32(clamping: data.apps ?? 0)
            change.books = UInt32(clamping: data.books ?? 0)
            change.users = UInt32(clamping: data.users ?? 0)
            change.assignments = UInt64(clamping: data.assignments ?? 0)
            self.sync = change
        case .counts, .licensesExhausted:
            var change = VppV1.CountsChange()
            change.removed = data.removed ?? false
            if !change.removed {
                change.counts = VppV1.LicenseCounts(
                    LedgerCounts(
                        total: data.total ?? 0,
                        unlimited: data.unlimited ?? false,
                        heldElsewhere: data.heldElsewhere ?? 0,
                        held: data.held ?? 0,
                        reserved: data.reserved ?? 0,
                        waiting: data.waiting ?? 0
                    )
                )
            }
            self.counts = change
        case .waitersServed, .reclaimDone:
            self.licenses = UInt32(clamping: data.count ?? 0)
        case .webhookDisabled:
            var change = VppV1.WebhookChange()
            change.webhookId = data.webhookID?.lowercasedText ?? ""
            change.url = data.url ?? ""
            change.reason = data.reason ?? ""
            self.webhook = change
        }
    }
}

extension VppV1.LicenseType {
    init(_ type: String?) {
        switch type {
        case "user": self = .user
        case "device": self = .device
        default: self = .unspecified
        }
    }
}

extension VppV1.LicenseChange {
    init(_ data: ChangeData) {
        self.init()
        self.licenseType = VppV1.LicenseType(data.targetKind)
        self.serialNumber = data.serialNumber ?? ""
        self.userExternalId = data.userExternalID ?? ""
        self.deviceId = data.deviceID?.lowercasedText ?? ""
        self.userId = data.userID?.lowercasedText ?? ""
        self.ended = data.ended ?? false
        self.reason = data.reason ?? ""
        self.installReason = data.installReason ?? ""
        if let ledger = data.state.flatMap(LicenseState.init(rawValue:)) {
            let install = data.installState.flatMap(InstallReport.init(rawValue:)) ?? InstallReport.none
            self.state = VppV1.InstallState(
                TargetState.of(ledger, install: install, invitationPending: data.invitationPending ?? false)
            )
            self.holdsLicense = !self.ended && ledger == .granted
        }
    }
}

extension VppV1.TokenChange {
    init(_ data: ChangeData, at: Date) {
        self.init()
        let expiresAt = Date(timeIntervalSince1970: data.expiresAt ?? 0)
        let status = data.status.flatMap(TokenRecord.Status.init(rawValue:)) ?? .active
        self.state =
            switch TokenRecord.state(status: status, expiresAt: expiresAt, at: at) {
            case .valid: .valid
            case .expiringSoon: .expiringSoon
            case .expired: .expired
            case .claimedElsewhere: .claimedElsewhere
            case .invalid: .invalid
            }
        self.displayName = data.displayName ?? ""
        self.locationName = data.locationName ?? ""
        self.expiresAt = VppV1.Timestamp(expiresAt)
        self.stateReason = data.statusReason ?? ""
        self.otherMdmName = data.otherMDMName ?? ""
        self.created = data.created ?? false
        self.deleted = data.deleted ?? false
        self.daysLeft = UInt32(clamping: data.days ?? 0)
    }
}
