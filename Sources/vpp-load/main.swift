import VPPLoadKit

await VPPLoadCommand.runMain()
