import VPPDaemon

await VPPDCommand.runMain()
