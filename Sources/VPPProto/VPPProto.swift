// VPPProto: the module's code lands here.
