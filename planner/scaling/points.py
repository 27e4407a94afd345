"""The points a scaling fit may use, shared by the point fit and the posterior so that both see the same data."""

from __future__ import annotations

import numpy as np

MIN_POINTS = 3  # a 3-parameter law; two points cannot bound a curve's shape


def usable_points(compute: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(compute, loss, log_c_reference) without non-finite or non-positive points, the reference being
    the mean log compute (normalising C keeps the exponentials well scaled); None with fewer than
    MIN_POINTS distinct compute values."""
    compute = np.asarray(compute, dtype=np.float64)
    loss = np.asarray(loss, dtype=np.float64)
    keep = np.isfinite(compute) & np.isfinite(loss) & (compute > 0)
    compute, loss = compute[keep], loss[keep]
    if len(np.unique(compute)) < MIN_POINTS:
        return None
    return compute, loss, float(np.log(compute).mean())
