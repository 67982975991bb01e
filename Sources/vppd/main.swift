print("vppd")
