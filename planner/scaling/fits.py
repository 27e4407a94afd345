"""Scaling-law point fits in plain numpy (the uncertainty is ``scaling.posterior``'s).

L(C) = E + A * C^(-alpha): E is the floor (irreducible loss), A > 0 and alpha > 0 say how
fast loss falls with compute C (FLOPs per sample). The fit grids alpha and solves E and A
in closed form for each alpha (bounded: floor_low <= E <= min L, A >= 0). It is the least-squares
curve recorded next to the posterior (scaling.json's fit); predictions, intervals and the held-out
check come from the posterior, because a 3-parameter fit from 3 points has no residuals to tell its
own uncertainty. With fewer than three points there is no fit; callers fall back explicitly.
With six or more points the fit is robust (Huber IRLS, alpha chosen by the smallest robust
residual scale), so one bad proxy does not bend it; with fewer, least squares.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from unimixer_plan.scaling.points import MIN_POINTS, usable_points

ALPHA_GRID = np.geomspace(0.005, 1.5, 240)
ROBUST_MIN_POINTS = 6  # below this a 3-parameter fit cannot tell an outlier from signal


@dataclass(frozen=True)
class PowerLawFit:
    floor: float  # E
    scale: float  # A
    alpha: float
    points: int
    residual_std: float
    log_c_reference: float  # C is normalised by exp(this) for numerical stability

    def predict(self, compute: float | np.ndarray) -> np.ndarray | float:
        c = np.asarray(compute, dtype=np.float64)
        value = self.floor + self.scale * np.exp(-self.alpha * (np.log(c) - self.log_c_reference))
        return float(value) if value.ndim == 0 else value

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _weighted_fits(
    basis: np.ndarray, loss: np.ndarray, weights: np.ndarray, floor_low: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """For every alpha row of ``basis`` (K, n): weighted least squares of loss ~ E + A * basis with
    floor_low <= E <= min(loss) and A >= 0, in closed form."""
    s0, s1, s2 = weights.sum(1), (weights * basis).sum(1), (weights * basis**2).sum(1)
    t0, t1 = (weights * loss).sum(1), (weights * basis * loss).sum(1)
    det = s0 * s2 - s1**2
    safe = np.where(np.abs(det) > 1e-300, det, 1.0)
    scale = np.where(np.abs(det) > 1e-300, (s0 * t1 - s1 * t0) / safe, 0.0)
    floor = (t0 - scale * s1) / s0
    flat = scale <= 0  # loss does not fall with compute: a flat line at the weighted mean
    floor = np.where(flat, t0 / s0, floor)
    scale = np.where(flat, 0.0, scale)
    clipped = np.clip(floor, min(floor_low, loss.min()), loss.min())
    refit = ~flat & (clipped != floor)
    rescale = np.maximum(0.0, (weights * (loss - clipped[:, None]) * basis).sum(1) / np.maximum(s2, 1e-300))
    scale = np.where(refit, rescale, scale)
    return clipped, scale


def fit_power_law(compute: np.ndarray, loss: np.ndarray, floor_low: float = 0.0) -> PowerLawFit | None:
    """Fit L = E + A C^-alpha over a grid of alpha (E, A in closed form for each); robust
    (Huber IRLS) from ROBUST_MIN_POINTS points on. The floor stays at or above ``floor_low`` (a known
    Bayes floor; 0 when none is known). None with fewer than MIN_POINTS distinct compute values."""
    points = usable_points(compute, loss)
    if points is None:
        return None
    compute, loss, log_ref = points
    x = np.log(compute) - log_ref
    basis = np.exp(-ALPHA_GRID[:, None] * x[None, :])  # (K, n)
    weights = np.ones_like(basis)
    floor, scale = _weighted_fits(basis, loss, weights, floor_low)
    residuals = loss - floor[:, None] - scale[:, None] * basis
    if len(loss) < ROBUST_MIN_POINTS:
        best = int(np.argmin((residuals**2).sum(1)))
    else:
        # Huber IRLS per alpha, each with its own robust scale (MAD of its residuals), and the
        # alpha whose fit leaves the smallest robust scale wins: one bad proxy cannot bend it.
        for _ in range(10):
            sigma = 1.4826 * np.median(np.abs(residuals), axis=1, keepdims=True)
            delta = np.maximum(1.345 * sigma, 1e-7)
            absolute = np.abs(residuals)
            weights = np.where(absolute <= delta, 1.0, delta / np.maximum(absolute, 1e-300))
            floor, scale = _weighted_fits(basis, loss, weights, floor_low)
            residuals = loss - floor[:, None] - scale[:, None] * basis
        best = int(np.argmin(np.median(np.abs(residuals), axis=1) + 1e-9 * (residuals**2).sum(1)))
    dof = max(1, len(loss) - 3)
    residual_std = float(np.sqrt((residuals[best] ** 2).sum() / dof))
    return PowerLawFit(
        float(floor[best]), float(scale[best]), float(ALPHA_GRID[best]), len(loss), residual_std, log_ref
    )


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
