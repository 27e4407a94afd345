"""The proxy ladder's design in compute and data, shared by the plan and the planted-truth simulator.

Rung k (1-based) searches models of C_k = target / LADDER_FACTOR^j FLOPs/sample trained on
N_k = N_1 * DATA_GROWTH^(k-1) distinct samples: data grows as the square root of compute, the
allocation that keeps neither axis starved (Chinchilla's; a ladder at one data size measures how a
data-limited proxy saturates, not how capacity pays). Compute and data then move together along the
diagonal, so on their own they cannot be told apart: each rung's best shape of every family is also
trained on N_k / DATA_POINT_DIVISOR rows, a point off the diagonal that measures the data axis at a
fixed compute. Below the top rung, each such shape is also trained with SEED_REPLICATES more seeds: the
proxies' noise, measured, which the law's likelihood is told (pooled over families and rungs).
"""

from __future__ import annotations

LADDER_FACTOR = 4
DATA_GROWTH = 2
DATA_POINT_DIVISOR = 4
# One more seed per shape and rung: with the default three families and four rungs, 9 degrees of freedom
# for the noise, pooled; the planted-truth calibration gives a single family's own, 3 on four rungs, and
# still covers >= 85 % (tests/test_calibration.py). Two seeds cost the default plan 2 more minutes.
SEED_REPLICATES = 1
MIN_DATA_POINT_SAMPLES = 250  # a few optimiser steps per epoch; below this a proxy learns nothing


def rung_samples(first: int, index: int, available: int) -> int:
    """Distinct training samples of rung ``index`` (1-based) when rung 1 trains on ``first``,
    capped by the ``available`` training rows."""
    return int(min(available, first * DATA_GROWTH ** (index - 1)))


def data_point_samples(samples: int) -> int:
    """The smaller data size a rung's best shapes are also trained on."""
    return int(max(MIN_DATA_POINT_SAMPLES, samples // DATA_POINT_DIVISOR))
