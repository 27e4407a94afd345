"""The run folder: what a plan writes, reads back on resume, and records about its environment."""
