"""How many trials run at once: as many as the live cluster can hold, read again as it changes.

A concurrency fixed when a search starts is wrong both ways on a cluster: a head with no CPUs for
trials (the usual production layout) would run one trial at a time forever, and workers that join
later would sit idle. ``PlanSearch`` proposes a new trial only while fewer are running than
:class:`LiveCapacity` says fit, so each proposal is made with every finished result known (a
proposal made far ahead is a random one), and a joining node raises the count within seconds.
"""

from __future__ import annotations

import math
import time
from typing import Any

REFRESH_S = 2.0  # ray.nodes() asks the cluster's control store: not on every proposal


def trials_that_fit(nodes: list[dict[str, Any]], cpus: float, gpus: float) -> int:
    """Trials of ``cpus`` CPUs and ``gpus`` GPUs that the alive nodes (``ray.nodes()``'s entries) hold
    at once, each trial on one node."""
    total = 0
    for node in nodes:
        if not node.get("Alive", node.get("alive", False)):
            continue
        resources = node.get("Resources", {})
        fits = [math.floor(resources.get("CPU", 0) / cpus + 1e-9)] if cpus > 0 else []
        if gpus > 0:
            fits.append(math.floor(resources.get("GPU", 0) / gpus + 1e-9))
        total += min(fits) if fits else 0
    return total


class LiveCapacity:
    """Callable: how many trials may run now (at least 1, so that a search waits for a node to join
    rather than proposing nothing). A module-level class: Tune pickles the searcher with it."""

    def __init__(self, cpus_per_trial: float, gpus_per_trial: float, refresh_s: float = REFRESH_S) -> None:
        self.cpus = cpus_per_trial
        self.gpus = gpus_per_trial
        self.refresh_s = refresh_s
        self.value = 1
        self.read_at = -math.inf

    def __call__(self) -> int:
        now = time.monotonic()
        if now - self.read_at >= self.refresh_s:
            import ray  # only where a search runs: this module's pure part is tested without it

            self.value = max(1, trials_that_fit(ray.nodes(), self.cpus, self.gpus))
            self.read_at = now
        return self.value
