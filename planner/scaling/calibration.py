"""Planted-truth ladders: does the posterior's nominal 90 % interval cover the truth 90 % of the time?

Why: DESIGN section 5 asks that the scaling uncertainty be calibrated by simulation. The bootstrap it
replaced covered 0-2 % with 3 points. Both the calibration test and benchmarks/calibration_bench.py
draw ladders from here, so the test's assertion and the bench's table measure the same thing.

The truths are drawn from ranges one would believe for these proxies (validation logloss of CTR
models of 3e4-2e6 FLOPs/sample): floor E uniform on [0.38, 0.47]; alpha log-uniform on [0.05, 0.6];
A set so that the loss falls by a drop log-uniform on [0.005, 0.08] from the smallest to the largest
rung (redrawn when the smallest rung would sit more than 0.15 above the floor: no such proxy losses
are seen); rungs 4x apart, the largest log-uniform on [5e5, 2e6] FLOPs/sample; Gaussian noise with sd
uniform on [0.001, 0.003] (seed-to-seed noise measured on such proxies); the target 100-1,000x
(log-uniform) beyond the largest rung. The known lower bound of the floor (the Bayes floor of the
synthetic data) sits 0-0.05 below the proxies' floor, since finite training data keeps proxies above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from unimixer_plan.scaling.posterior import Prior, fit_posterior

LADDER_FACTOR = 4.0
# The smallest proxy's loss lies at most this far above the floor (no loss above ~0.62; a constant
# predictor at Criteo's 26 % click rate scores 0.57).
MAX_EXCESS = 0.15


@dataclass(frozen=True)
class PlantedLadder:
    compute: np.ndarray
    loss: np.ndarray  # observed: truth + noise
    floor: float
    scale: float
    alpha: float
    sigma: float
    floor_low: float  # the known lower bound of the floor (a Bayes floor)
    target: float

    @property
    def extrapolation(self) -> float:
        return float(self.target / self.compute.max())

    def truth(self, compute: float) -> float:
        return float(self.floor + self.scale * compute**-self.alpha)


def planted_ladder(rng: np.random.Generator, points: int, factor: float | None = None) -> PlantedLadder:
    """One ladder with ``points`` rungs; ``factor`` fixes target / largest rung (else 100-1,000x)."""
    floor = rng.uniform(0.38, 0.47)
    top = float(np.exp(rng.uniform(np.log(5e5), np.log(2e6))))
    compute = top / LADDER_FACTOR ** np.arange(points - 1, -1, -1, dtype=np.float64)
    while True:  # a slow exponent with a large drop puts the smallest proxy at an unrealistic loss: redraw
        alpha = float(np.exp(rng.uniform(np.log(0.05), np.log(0.6))))
        drop = float(np.exp(rng.uniform(np.log(0.005), np.log(0.08))))
        scale = drop / (compute[0] ** -alpha - compute[-1] ** -alpha)
        if scale * compute[0] ** -alpha <= MAX_EXCESS:
            break
    sigma = rng.uniform(0.001, 0.003)
    loss = floor + scale * compute**-alpha + rng.normal(0.0, sigma, points)
    factor = factor if factor is not None else float(np.exp(rng.uniform(np.log(100), np.log(1000))))
    floor_low = floor - rng.uniform(0.0, 0.05)
    return PlantedLadder(compute, loss, floor, scale, alpha, sigma, floor_low, top * factor)


@dataclass(frozen=True)
class Outcome:
    points: int
    extrapolation: float
    covered: bool
    width: float
    error: float  # |median - truth| at the target
    median_inside: bool


def check_ladder(
    ladder: PlantedLadder, measured_sigma: bool = False, known_floor: bool = True, seed: int = 0, level: float = 0.9
) -> Outcome:
    """Fit the posterior to one ladder and score its interval at the target against the truth.
    ``measured_sigma``: the prior gets the true noise sd (else it is marginalised); ``known_floor``:
    the floor's lower bound is the ladder's Bayes floor (else 0, as on real data)."""
    prior = Prior(floor_low=ladder.floor_low if known_floor else 0.0, sigma=ladder.sigma if measured_sigma else None)
    posterior = fit_posterior(ladder.compute, ladder.loss, prior, seed=seed)
    assert posterior is not None
    median, (low, high) = posterior.predict(ladder.target, level)
    truth = ladder.truth(ladder.target)
    return Outcome(
        points=len(ladder.compute),
        extrapolation=ladder.extrapolation,
        covered=low <= truth <= high,
        width=high - low,
        error=abs(median - truth),
        median_inside=low <= median <= high,
    )


def simulate(
    ladders: int,
    points: tuple[int, ...] = (3, 4, 5, 6, 7, 8),
    seed: int = 0,
    measured_sigma: bool = False,
    factor: float | None = None,
    known_floor: bool = True,
) -> list[Outcome]:
    """``ladders`` planted ladders, their sizes cycling through ``points``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(ladders):
        ladder = planted_ladder(rng, points[i % len(points)], factor)
        out.append(check_ladder(ladder, measured_sigma, known_floor, seed=i))
    return out
