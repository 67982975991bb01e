// VPPDaemon: the module's code lands here.
