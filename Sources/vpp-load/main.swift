import NIOCore
import NIOPosix
import VPPBenchKit

// As in vppd: Swift Concurrency's jobs run on NIO's event loops, so a call's task needs no hand-over between an event
// loop and Dispatch's worker threads. The load generator shares the machine with the server it measures, and those
// hand-overs were its largest cost (docs/performance.md). Nothing blocks in a task. Must run before any task starts.
_ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()

await VPPLoadCommand.runMain()
