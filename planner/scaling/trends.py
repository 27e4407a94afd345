"""How a shape knob moves with scale: a least-squares trend in log-log space, in plain numpy.

The scale-up moves the best proxy's knobs (tokens, heads, rank, depth, ...) along these trends to the
target FLOPs. The quality law itself is ``scaling.posterior``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from unimixer_plan.scaling.points import MIN_POINTS


@dataclass(frozen=True)
class LogTrend:
    """log(value) = intercept + slope * log(C), for how a shape knob moves with scale."""

    slope: float
    intercept: float

    def predict(self, compute: float) -> float:
        return float(np.exp(self.intercept + self.slope * np.log(compute)))


def fit_log_trend(compute: np.ndarray, values: np.ndarray, max_slope: float = 0.25) -> LogTrend | None:
    """Least-squares trend in log-log space; the slope is clipped to [-max_slope, max_slope] because a
    handful of noisy proxy optima must not send a knob to an extreme far outside the fitted range."""
    compute = np.asarray(compute, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if len(np.unique(compute)) < MIN_POINTS or np.any(values <= 0):
        return None
    x, y = np.log(compute), np.log(values)
    slope = float(np.clip(np.polyfit(x, y, 1)[0], -max_slope, max_slope))
    return LogTrend(slope=slope, intercept=float(y.mean() - slope * x.mean()))
