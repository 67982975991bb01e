import VPPCtlKit

await VPPCtlCommand.runMain()
