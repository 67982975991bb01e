// VPPWire: the module's code lands here.
