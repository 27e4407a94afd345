"""The points a scaling law may use: finite, positive compute and data, and enough distinct compute."""

from __future__ import annotations

import numpy as np

MIN_POINTS = 3  # distinct compute values: two points cannot bound a curve's shape


def usable_points(
    compute: np.ndarray, samples: np.ndarray, loss: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(compute, samples, loss) without non-finite or non-positive points; None with fewer than
    MIN_POINTS distinct compute values."""
    compute, samples, loss = (np.asarray(v, dtype=np.float64) for v in (compute, samples, loss))
    keep = np.isfinite(compute) & np.isfinite(samples) & np.isfinite(loss) & (compute > 0) & (samples > 0)
    compute, samples, loss = compute[keep], samples[keep], loss[keep]
    if len(np.unique(compute)) < MIN_POINTS:
        return None
    return compute, samples, loss
