import Foundation
public import VPPProto

/// The live view of a sync job fed by WatchSyncJob: a progress bar while it runs, one summary line at the end.
/// Pure functions of the job, so the rendering is tested without a server.
public enum SyncProgress {
    static let phases: [VppV1.SyncPhase] = [.clientConfig, .assets, .metadata, .users, .assignments, .reconcile]

    public static func isFinished(_ state: VppV1.SyncJobState) -> Bool {
        switch state {
        case .succeeded, .failed, .cancelled: true
        default: false
        }
    }

    /// How far the job is, 0...1: each phase is an equal share, filled by items_done / items_total within it.
    public static func fraction(_ job: VppV1.SyncJob) -> Double {
        if job.state == .succeeded || job.phase == .done { return 1 }
        guard let index = Self.phases.firstIndex(of: job.phase) else { return 0 }
        let within = job.itemsTotal > 0 ? min(1, Double(job.itemsDone) / Double(job.itemsTotal)) : 0
        return (Double(index) + within) / Double(Self.phases.count)
    }

    /// `[##########··········]  50%  users 120/300  running`
    public static func bar(_ job: VppV1.SyncJob, width: Int = 24) -> String {
        let fraction = Self.fraction(job)
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let percent = String(Int((fraction * 100).rounded(.down)))
        var line =
            "[\(bar)] \(String(repeating: " ", count: 3 - percent.count))\(percent)%  \(Self.phaseName(job.phase))"
        if job.itemsTotal > 0 { line += " \(job.itemsDone)/\(job.itemsTotal)" }
        line += "  \(Self.stateName(job.state))"
        if job.state == .retrying {
            line += " (attempt \(job.attempt)" + (job.error.isEmpty ? ")" : ": \(job.error))")
        }
        return line
    }

    /// One line for a finished (or cancelled) job, e.g.
    /// `Sync 3f2a… of token 9c1e… succeeded in 1.4s: 4 apps, 1 book, 1 custom app skipped (R9), …`
    public static func summary(_ job: VppV1.SyncJob) -> String {
        var line = "Sync \(job.id) \(Self.stateName(job.state))"
        if let started = job.startedAt, let finished = job.finishedAt {
            let seconds = Double(finished.seconds - started.seconds) + Double(finished.nanos - started.nanos) / 1e9
            line += " in \((seconds * 10).rounded() / 10)s"
        }
        switch job.state {
        case .succeeded:
            let stats = job.stats ?? VppV1.SyncStats()
            var parts = [
                Self.count(Int(stats.apps), "app"), Self.count(Int(stats.books), "book"),
                Self.count(Int(stats.users), "user"), Self.count(Int(stats.assignments), "license"),
            ]
            if stats.skippedAssets > 0 {
                parts.append(Self.count(Int(stats.skippedAssets), "custom app") + " skipped (R9)")
            }
            if stats.foreignUsers > 0 {
                parts.append(Self.count(Int(stats.foreignUsers), "user") + " of another MDM not synced (R10)")
            }
            return line + (job.fullSync ? " (full read)" : "") + ": " + parts.joined(separator: ", ") + "."
        case .failed:
            return line + " after \(Self.count(Int(job.attempt), "attempt")): "
                + (job.error.isEmpty ? "no reason given." : job.error)
        default:
            return line + "."
        }
    }

    static func count(_ number: Int, _ noun: String) -> String {
        "\(number) \(noun)\(number == 1 ? "" : "s")"
    }

    static func phaseName(_ phase: VppV1.SyncPhase) -> String {
        switch phase {
        case .unspecified: "waiting"
        default: snakeCase(String(describing: phase)).replacingOccurrences(of: "_", with: " ")
        }
    }

    static func stateName(_ state: VppV1.SyncJobState) -> String {
        snakeCase(String(describing: state)).replacingOccurrences(of: "_", with: " ")
    }
}
