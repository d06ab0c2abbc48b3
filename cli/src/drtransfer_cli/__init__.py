"""deepracer-transfer command line."""
