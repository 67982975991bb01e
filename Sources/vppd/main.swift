import VPPDaemon

await VPPDCommand.main()
