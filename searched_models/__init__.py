"""PixelNAS model zoo: one spec language, training, search, cost and evaluation."""
