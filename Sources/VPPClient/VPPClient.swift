// VPPClient: the module's code lands here.
