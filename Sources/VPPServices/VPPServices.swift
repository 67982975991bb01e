// VPPServices: the module's code lands here.
