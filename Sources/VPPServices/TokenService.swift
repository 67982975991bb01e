import Foundation
import Logging
import VPPJobs
import VPPProto
import VPPServer
import VPPStorage
import VPPSync
import VPPTokens
import VPPWire

/// A tenant's VPP tokens (R1-R6, C4, C5) and their sync jobs (R7, C6).
struct TokenService: Sendable {
    let manager: TokenManager
    let syncs: SyncJobs
    let auditor: TenantAuditor
    let progress: JobProgressHub
    /// How often a watcher re-reads its job when no notification arrives.
    let watchPollInterval: Duration

    var tokens: TokenStore { manager.store }

    func register(into router: inout RPCRouter) {
        typealias Tokens = VppV1.TokenService
        router.register(Tokens.UploadToken.self, requires: .tenant) { request, context in
            let tenantID = try context.tenantID()
            return try await self.auditor.audited(
                context,
                tenantID: tenantID,
                target: { "token:\($0?.token?.id ?? "")" }
            ) {
                try await self.upload(request, tenantID: tenantID)
            }
        }
        router.register(Tokens.GetToken.self, requires: .tenant) { request, context in
            VppV1.Token(
                try await self.tokens.get(
                    tenantID: try context.tenantID(),
                    try parseID(request.tokenId, field: "token_id")
                )
            )
        }
        router.register(Tokens.ListTokens.self, requires: .tenant) { request, context in
            let state: TokenRecord.State?
            switch request.state {
            case .unspecified: state = nil
            case .valid: state = .valid
            case .expiringSoon: state = .expiringSoon
            case .expired: state = .expired
            case .claimedElsewhere: state = .claimedElsewhere
            case .invalid: state = .invalid
            case .unrecognized(let value):
                throw RPCError.invalidArgument("state \(value) is not a TokenState.", field: "state")
            }
            let (tokens, next) = try await self.tokens.list(
                tenantID: try context.tenantID(),
                state: state,
                pageSize: pageSize(request.page),
                after: try pageToken(request.page, fields: 2)
            )
            let now = Date()
            return VppV1.ListTokensResponse(tokens: tokens.map { VppV1.Token($0, now: now) }, page: pageInfo(next))
        }
        router.register(Tokens.ListTokenNotifications.self, requires: .tenant) { request, context in
            let tenantID = try context.tenantID()
            let tokenID = try parseID(request.tokenId, field: "token_id")
            guard request.limit <= 500 else {
                throw RPCError.invalidArgument("limit is at most 500.", field: "limit")
            }
            // Another tenant's token reads as unknown (C3).
            _ = try await self.tokens.get(tenantID: tenantID, tokenID)
            let received = try await self.tokens.recentNotifications(
                tenantID: tenantID,
                tokenID,
                limit: request.limit == 0 ? 50 : Int(request.limit)
            )
            return VppV1.ListTokenNotificationsResponse(notifications: received.map(VppV1.AppleNotification.init))
        }
        router.register(Tokens.RenewToken.self, requires: .tenant) { request, context in
            try await self.auditor.audited(context, target: "token:\(request.tokenId)") { tenantID in
                let tokenID = try parseID(request.tokenId, field: "token_id")
                let record = try await self.manager.renew(tenantID: tenantID, tokenID: tokenID, file: request.tokenFile)
                // R3: the renewed token syncs at once.
                _ = try await self.syncs.request(tenantID: tenantID, tokenID: tokenID, trigger: .manual, full: false)
                return VppV1.Token(record)
            }
        }
        router.register(Tokens.DeleteToken.self, requires: .tenant) { request, context in
            try await self.auditor.audited(context, target: "token:\(request.tokenId)") { tenantID in
                let tokenID = try parseID(request.tokenId, field: "token_id")
                guard request.confirm == request.tokenId else {
                    throw RPCError.invalidArgument(
                        "Deleting a token removes its apps, books and licenses from this service: set confirm to the token's id to go ahead.",
                        field: "confirm"
                    )
                }
                // Checks the id belongs to this tenant before touching the queue.
                _ = try await self.tokens.get(tenantID: tenantID, tokenID)
                try await self.syncs.cancel(tokenID: tokenID, reason: "The token was deleted.")
                let deletion = try await self.tokens.delete(tenantID: tenantID, tokenID)
                return VppV1.DeleteTokenResponse(
                    removedAssignments: UInt32(clamping: deletion.removedAssignments),
                    forgottenLicenses: UInt32(clamping: deletion.forgottenLicenses),
                    removedAssets: UInt32(clamping: deletion.removedAssets)
                )
            }
        }

        typealias Sync = VppV1.SyncService
        router.register(Sync.SyncToken.self, requires: .tenant) { request, context in
            try await self.auditor.audited(context, target: "token:\(request.tokenId)") { tenantID in
                let tokenID = try parseID(request.tokenId, field: "token_id")
                let token = try await self.tokens.get(tenantID: tenantID, tokenID)
                switch token.state(at: Date()) {
                case .valid, .expiringSoon:
                    break
                case .expired, .invalid, .claimedElsewhere:
                    throw RPCError.failedPrecondition(
                        "This token cannot sync: \(token.statusReason.isEmpty ? "it expired" : token.statusReason) Renew it with a new .vpptoken file first (R3).",
                        reason: "TOKEN_NOT_SYNCABLE"
                    )
                }
                let (job, _) = try await self.syncs.request(
                    tenantID: tenantID,
                    tokenID: tokenID,
                    trigger: .manual,
                    full: request.full
                )
                return VppV1.SyncJob(job)
            }
        }
        router.register(Sync.GetSyncJob.self, requires: .tenant) { request, context in
            VppV1.SyncJob(
                try await self.syncs.get(
                    tenantID: try context.tenantID(),
                    jobID: try parseID(request.jobId, field: "job_id")
                )
            )
        }
        router.register(Sync.ListSyncJobs.self, requires: .tenant) { request, context in
            let tenantID = try context.tenantID()
            var tokenID: UUID?
            if !request.tokenId.isEmpty {
                let id = try parseID(request.tokenId, field: "token_id")
                _ = try await self.tokens.get(tenantID: tenantID, id)
                tokenID = id
            }
            let (jobs, next) = try await self.syncs.list(
                tenantID: tenantID,
                tokenID: tokenID,
                pageSize: pageSize(request.page),
                after: try pageToken(request.page, fields: 2)
            )
            return VppV1.ListSyncJobsResponse(jobs: jobs.map(VppV1.SyncJob.init), page: pageInfo(next))
        }
        router.registerStream(Sync.WatchSyncJob.self, requires: .tenant) { request, context, stream in
            let tenantID = try context.tenantID()
            let jobID = try parseID(request.jobId, field: "job_id")
            var last: VppV1.SyncJob?
            while true {
                let job = try await self.syncs.get(tenantID: tenantID, jobID: jobID)
                let message = VppV1.SyncJob(job)
                if message != last {
                    try await stream.send(message)
                    last = message
                }
                if !job.state.isActive { return }
                await self.progress.wait(for: jobID.lowercasedText, timeout: self.watchPollInterval)
                try Task.checkCancellation()
            }
        }
    }

    private func upload(_ request: VppV1.UploadTokenRequest, tenantID: UUID) async throws -> VppV1.UploadTokenResponse {
        let accountType: TokenRecord.AccountType?
        switch request.accountType {
        case .business: accountType = .business
        case .education: accountType = .education
        case .unspecified, .unrecognized: accountType = nil
        }
        let upload = try await self.manager.upload(
            tenantID: tenantID,
            file: request.tokenFile,
            appleID: request.appleId,
            accountType: accountType,
            displayName: request.displayName,
            takeOver: request.takeOver,
            queueFirstSync: { [syncs] tokenID, transaction in
                // Queued with the token, before the claim: if this call is cut, the sync claims the token and reads
                // it (issue 16).
                _ = try await syncs.request(
                    tenantID: tenantID,
                    tokenID: tokenID,
                    trigger: .upload,
                    full: true,
                    in: transaction
                )
            }
        )
        // Joins the job queued above.
        let (job, _) = try await self.syncs.request(
            tenantID: tenantID,
            tokenID: upload.token.id,
            trigger: .upload,
            full: true
        )
        return VppV1.UploadTokenResponse(
            token: VppV1.Token(upload.token),
            syncJobId: job.id.lowercasedText,
            previousMdm: upload.previousMDM ?? ""
        )
    }
}

extension VppV1.Token {
    init(_ record: TokenRecord, now: Date = Date()) {
        self.init()
        self.id = record.id.lowercasedText
        self.displayName = record.displayName
        switch record.state(at: now) {
        case .valid: self.state = .valid
        case .expiringSoon: self.state = .expiringSoon
        case .expired: self.state = .expired
        case .claimedElsewhere: self.state = .claimedElsewhere
        case .invalid: self.state = .invalid
        }
        switch record.state(at: now) {
        case .valid: self.stateReason = ""
        case .expiringSoon:
            self.stateReason = "The token expires within 30 days; download a new .vpptoken file and renew it (R3)."
        case .expired where record.statusReason.isEmpty:
            self.stateReason = "The token expired; it cannot sync until it is renewed with a new .vpptoken file (R3)."
        default: self.stateReason = record.statusReason
        }
        self.expiresAt = VppV1.Timestamp(record.expiresAt)
        self.organizationName = record.organizationName
        self.locationName = record.locationName
        self.locationId = record.locationUID
        self.accountType = record.accountType == .business ? .business : .education
        self.appleId = record.appleID
        self.countryCode = record.countryCode
        self.appCount = UInt32(clamping: record.appCount)
        self.bookCount = UInt32(clamping: record.bookCount)
        self.skippedAssetCount = UInt32(clamping: record.skippedAssetCount)
        self.foreignUserCount = UInt32(clamping: record.foreignUserCount)
        if record.lastSync.jobID != nil {
            let result: VppV1.SyncResult =
                switch record.lastSync.result {
                case "succeeded": .succeeded
                case "failed": .failed
                case "cancelled": .cancelled
                default: .unspecified
                }
            self.lastSync = VppV1.LastSync(
                startedAt: record.lastSync.startedAt.map(VppV1.Timestamp.init),
                finishedAt: record.lastSync.finishedAt.map(VppV1.Timestamp.init),
                result: result,
                error: record.lastSync.error,
                jobId: record.lastSync.jobID?.lowercasedText ?? ""
            )
        }
        self.nextSyncAt = record.nextSyncAt.map(VppV1.Timestamp.init)
        self.createdAt = VppV1.Timestamp(record.createdAt)
        self.updatedAt = VppV1.Timestamp(record.updatedAt)
        let notifications = record.notifications
        self.notifications = VppV1.TokenNotifications(
            subscribed: notifications.subscribed,
            url: notifications.url,
            subscribedAt: notifications.subscribedAt.map(VppV1.Timestamp.init),
            lastError: notifications.lastError,
            lastReceivedAt: notifications.lastReceivedAt.map(VppV1.Timestamp.init),
            lastType: notifications.lastType,
            receivedCount: UInt64(max(0, notifications.receivedCount)),
            refusedCount: UInt64(max(0, notifications.refusedCount)),
            flowing: notifications.flowing,
            missedAt: notifications.missedAt.map(VppV1.Timestamp.init)
        )
    }
}

extension VppV1.AppleNotification {
    init(_ received: ReceivedNotification) {
        self.init(
            notificationId: received.notificationID,
            type: received.type,
            eventId: received.eventID ?? "",
            receivedAt: VppV1.Timestamp(received.receivedAt),
            processedAt: received.processedAt.map(VppV1.Timestamp.init),
            outcome: received.outcome
        )
    }
}

extension VppV1.SyncJob {
    init(_ job: JobRecord) {
        self.init()
        self.id = job.id.lowercasedText
        self.tokenId = job.subject
        switch job.state {
        case .queued: self.state = .queued
        case .running: self.state = .running
        case .retrying: self.state = .retrying
        case .succeeded: self.state = .succeeded
        case .failed: self.state = .failed
        case .cancelled: self.state = .cancelled
        }
        switch SyncPhase(rawValue: job.phase) {
        case .clientConfig: self.phase = .clientConfig
        case .assets: self.phase = .assets
        case .metadata: self.phase = .metadata
        case .users: self.phase = .users
        case .assignments: self.phase = .assignments
        case .reconcile: self.phase = .reconcile
        case .done: self.phase = .done
        case nil: self.phase = .unspecified
        }
        switch SyncJobs.Trigger(rawValue: job.trigger) {
        case .schedule: self.trigger = .schedule
        case .manual: self.trigger = .manual
        case .upload: self.trigger = .upload
        case .ledger: self.trigger = .ledger
        case .notification: self.trigger = .notification
        case nil: self.trigger = .unspecified
        }
        self.itemsDone = UInt64(max(0, job.itemsDone))
        self.itemsTotal = UInt64(max(0, job.itemsTotal))
        self.attempt = UInt32(clamping: job.attempt)
        self.queuedAt = VppV1.Timestamp(job.queuedAt)
        self.startedAt = job.startedAt.map(VppV1.Timestamp.init)
        self.finishedAt = job.finishedAt.map(VppV1.Timestamp.init)
        if job.state == .retrying || job.state == .queued {
            self.nextAttemptAt = VppV1.Timestamp(job.runAfter)
        }
        self.error = job.error
        if let summary = SyncJobs.summary(of: job) {
            self.stats = VppV1.SyncStats(
                apps: UInt32(clamping: summary.apps),
                books: UInt32(clamping: summary.books),
                skippedAssets: UInt32(clamping: summary.skippedAssets),
                users: UInt32(clamping: summary.users),
                foreignUsers: UInt32(clamping: summary.foreignUsers),
                assignments: UInt64(max(0, summary.assignments)),
                foreignAssignments: UInt64(max(0, summary.foreignAssignments))
            )
            self.fullSync = summary.fullSync
        } else {
            self.fullSync = SyncJobs.payload(of: job)?.full ?? false
        }
    }
}
