"""Training and evaluation of one candidate, and the metrics it reports."""
