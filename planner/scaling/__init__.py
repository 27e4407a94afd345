"""Auto-scaling: the proxy ladder, scaling-law fits with intervals, and the scale-up to the target."""
