import NIOCore
import NIOPosix
import VPPDaemon

// Swift Concurrency's jobs (every RPC handler is a task) run on NIO's event loops instead of Dispatch's worker
// threads: a call then costs no hand-over from an event loop to a worker thread and back, which on a small machine
// was a good part of each call's time (docs/performance.md). Nothing blocks in a task: libpq runs on the pool's own
// threads. Must run on the main thread before any task starts.
_ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()

await VPPDCommand.runMain()
