// VPPStorage: the module's code lands here.
