// VPPPostgres: the module's code lands here.
