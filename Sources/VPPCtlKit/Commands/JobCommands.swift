import ArgumentParser
import VPPProto

/// `vppctl jobs …`: SyncService's jobs (SyncToken itself is `vppctl tokens sync`).
struct JobsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "List, show and watch sync jobs (C6).",
        discussion: "Example: vppctl jobs list --token 6f1c2a9e-…",
        subcommands: [JobsList.self, JobsShow.self, JobsWatch.self]
    )
}

struct JobsList: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List sync jobs, newest first, with their state, phase and trigger.",
        discussion: "Example: vppctl jobs list --token 6f1c2a9e-…"
    )

    @Option(name: .customLong("token"), help: "Only this token's jobs.")
    var tokenID: String?

    @OptionGroup var page: PageOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            let answer = try await ctl.call(
                VppV1.SyncService.ListSyncJobs.self,
                VppV1.ListSyncJobsRequest(page: self.page.request, tokenId: self.tokenID ?? ""),
                notFound: Look.tokens
            )
            ctl.printer.list(
                answer,
                items: "jobs",
                columns: [
                    Column("ID", "id"), Column("TOKEN", "token_id"), Column("STATE", "state"), Column("PHASE", "phase"),
                    Column("TRIGGER", "trigger"), Column("QUEUED", "queued_at"), Column("FINISHED", "finished_at"),
                    Column("ERROR", "error"),
                ],
                empty: "No sync jobs."
            )
        }
    }
}

struct JobsShow: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one sync job: state, phase, progress, attempts, error and counts.",
        discussion: "Example: vppctl jobs show 0b7d…"
    )

    @Argument(help: ArgumentHelp("The job's id (vppctl jobs list).", valueName: "job-id"))
    var jobID: String

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.show(
            self.connection,
            self.output,
            VppV1.SyncService.GetSyncJob.self,
            VppV1.GetSyncJobRequest(jobId: self.jobID),
            notFound: Look.jobs
        )
    }
}

struct JobsWatch: CtlSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Follow a sync job with a live progress bar until it ends; exits 1 if it fails.",
        discussion: "Example: vppctl jobs watch 0b7d…"
    )

    @Argument(help: ArgumentHelp("The job's id (vppctl jobs list).", valueName: "job-id"))
    var jobID: String

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func execute() async throws {
        try await Ctl.run(self.connection, self.output) { ctl in
            try await SyncFollower(ctl: ctl).follow(jobID: self.jobID)
        }
    }
}
