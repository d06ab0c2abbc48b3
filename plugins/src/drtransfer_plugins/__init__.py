"""deepracer-transfer built-in plugins, each found through the drtransfer entry-point group."""
