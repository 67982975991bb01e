// VPPTesting: the module's code lands here.
