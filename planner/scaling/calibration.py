"""Planted-truth ladders: does the plan's nominal 90 % interval cover the truth 90 % of the time?

Why: DESIGN section 5 asks that the scaling uncertainty be calibrated by simulation. The residual
bootstrap the posterior replaced covered 0-2 % with 3 points. Both the calibration test and
benchmarks/calibration_bench.py draw ladders from here, and score the prediction the plan makes
(``scaling.prediction.predict``: the posterior, its held-out check and the check's misspecification
term), so the test's assertion and the bench's table measure what a plan reports.

A ladder has the plan's design (``scaling.design``): rungs 4x apart in compute, the largest
log-uniform on [5e5, 2e6] FLOPs/sample, data doubling per rung up to a top of 2^14-2^17 samples, and
each rung's best also trained on a quarter of its data. The truths are drawn from ranges one would
believe for these proxies (validation logloss of CTR models): floor E uniform on [0.36, 0.47];
alpha and beta log-uniform on [0.05, 0.6]; A and B set so that the loss falls by a compute drop
log-uniform on [0.003, 0.05] across the ladder's compute at fixed data and a data drop log-uniform
on [0.005, 0.08] across its data at fixed compute (redrawn when the smallest point would sit more
than 0.15 above the floor: no such proxy losses are seen). Each point gets Gaussian noise with sd
uniform on [0.001, 0.004] (seed-to-seed noise measured on such proxies), and the noise is also
"measured": SEED_REPLICATES more seeds at every rung but the top, as the plan runs them for one family
(a plan pools the replicates of all its families, so it knows the noise at least this well). The target lies
100-1,000x beyond the largest rung in compute and 30-600x beyond its data (log-uniform); the known
lower bound of the floor sits 0-0.05 below the floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from unimixer_plan.scaling.design import DATA_GROWTH, DATA_POINT_DIVISOR, LADDER_FACTOR, SEED_REPLICATES
from unimixer_plan.scaling.posterior import Prior
from unimixer_plan.scaling.prediction import predict

# The smallest point's loss lies at most this far above the floor (no loss above ~0.62; a constant
# predictor at Criteo's 26 % click rate scores 0.57).
MAX_EXCESS = 0.15


@dataclass(frozen=True)
class PlantedLadder:
    compute: np.ndarray
    samples: np.ndarray
    loss: np.ndarray  # observed: truth + noise
    floor: float
    scale_compute: float
    alpha: float
    scale_data: float
    beta: float
    sigma: float
    replicate_ss: float
    replicate_dof: int
    floor_low: float  # the known lower bound of the floor (a Bayes floor)
    target_compute: float
    target_samples: float

    @property
    def extrapolation(self) -> dict[str, float]:
        return {
            "flops": float(self.target_compute / self.compute.max()),
            "data": float(self.target_samples / self.samples.max()),
        }

    def truth(self, compute: float, samples: float) -> float:
        return float(self.floor + self.scale_compute * compute**-self.alpha + self.scale_data * samples**-self.beta)


def planted_ladder(rng: np.random.Generator, rungs: int, factor: float | None = None) -> PlantedLadder:
    """One ladder of ``rungs`` rungs (2 points each); ``factor`` fixes target / largest rung in compute
    (else 100-1,000x)."""
    floor = rng.uniform(0.36, 0.47)
    top = float(np.exp(rng.uniform(np.log(5e5), np.log(2e6))))
    top_samples = float(2 ** rng.integers(14, 18))
    steps = np.arange(rungs - 1, -1, -1, dtype=np.float64)
    rung_compute, rung_samples = top / LADDER_FACTOR**steps, top_samples / DATA_GROWTH**steps
    compute = np.r_[rung_compute, rung_compute]
    samples = np.r_[rung_samples, rung_samples / DATA_POINT_DIVISOR]
    while True:  # slow exponents with large drops put the smallest point at an unrealistic loss: redraw
        alpha, beta = np.exp(rng.uniform(np.log(0.05), np.log(0.6), 2))
        drop_c, drop_n = np.exp(rng.uniform(np.log([0.003, 0.005]), np.log([0.05, 0.08])))
        scale_c = drop_c / (compute.min() ** -alpha - compute.max() ** -alpha)
        scale_n = drop_n / (samples.min() ** -beta - samples.max() ** -beta)
        if scale_c * compute.min() ** -alpha + scale_n * samples.min() ** -beta <= MAX_EXCESS:
            break
    sigma = rng.uniform(0.001, 0.004)
    truth = floor + scale_c * compute**-alpha + scale_n * samples**-beta
    loss = truth + rng.normal(0.0, sigma, len(compute))
    dof = SEED_REPLICATES * (rungs - 1)
    factor = factor if factor is not None else float(np.exp(rng.uniform(np.log(100), np.log(1000))))
    return PlantedLadder(
        compute=compute,
        samples=samples,
        loss=loss,
        floor=floor,
        scale_compute=float(scale_c),
        alpha=float(alpha),
        scale_data=float(scale_n),
        beta=float(beta),
        sigma=sigma,
        replicate_ss=float(sigma**2 * rng.chisquare(dof)),
        replicate_dof=dof,
        floor_low=floor - rng.uniform(0.0, 0.05),
        target_compute=top * factor,
        target_samples=top_samples * float(np.exp(rng.uniform(np.log(30), np.log(600)))),
    )


@dataclass(frozen=True)
class Outcome:
    points: int
    extrapolation: dict[str, float]
    covered: bool
    width: float
    error: float  # |median - truth| at the target
    median_inside: bool
    check_failed: bool  # the held-out check's point fell outside its own interval


def check_ladder(
    ladder: PlantedLadder, measured_sigma: bool = True, known_floor: bool = True, seed: int = 0
) -> Outcome:
    """Predict the target from one ladder as the plan does and score the interval against the truth.
    ``measured_sigma``: the prior gets the replicates' sum of squares (else sigma is set by the points
    and its bounds); ``known_floor``: the floor's lower bound is the ladder's Bayes floor (else 0)."""
    prior = Prior(
        floor_low=ladder.floor_low if known_floor else 0.0,
        replicate_ss=ladder.replicate_ss if measured_sigma else 0.0,
        replicate_dof=ladder.replicate_dof if measured_sigma else 0,
    )
    prediction = predict(
        ladder.compute, ladder.samples, ladder.loss, prior, ladder.target_compute, ladder.target_samples, seed
    )
    assert prediction is not None
    low, high = prediction.interval
    truth = ladder.truth(ladder.target_compute, ladder.target_samples)
    return Outcome(
        points=len(ladder.compute),
        extrapolation=ladder.extrapolation,
        covered=low <= truth <= high,
        width=high - low,
        error=abs(prediction.median - truth),
        median_inside=low <= prediction.median <= high,
        check_failed=prediction.held_out is not None and not prediction.held_out.passed,
    )


def simulate(
    ladders: int,
    rungs: tuple[int, ...] = (3, 4, 5),
    seed: int = 0,
    measured_sigma: bool = True,
    factor: float | None = None,
    known_floor: bool = True,
) -> list[Outcome]:
    """``ladders`` planted ladders, their rung counts cycling through ``rungs`` (2 points per rung)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(ladders):
        ladder = planted_ladder(rng, rungs[i % len(rungs)], factor)
        out.append(check_ladder(ladder, measured_sigma, known_floor, seed=i))
    return out
