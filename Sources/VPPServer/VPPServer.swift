// VPPServer: the module's code lands here.
