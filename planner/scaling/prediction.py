"""A family's prediction at the target: the posterior's, checked on the ladder's own top rung and widened
by what that check says the law gets wrong.

1. The posterior (``scaling.posterior``) on every point predicts the target (compute, data).
2. The held-out check refits without the top rung (its diagonal point and its data point) and predicts
   the top rung's diagonal point, with the interval of a new measurement there (noise included, since
   the point is one measurement). The check's step (top rung / the largest point left, in compute and
   in data) is reported next to the real step (target / top rung): a check 4x out says little about a
   prediction 1,000x out, and the summary says both.
3. What the check cannot explain is misspecification: tau_check, how far the measured point lies
   outside the check's own 90 % interval (0 when it is inside: noise and parameter uncertainty
   explain it). It is carried to the target grown with the log-distance, tau = tau_check * d_target /
   d_check with d = sqrt(ln(C ratio)^2 + ln(N ratio)^2), and added to the target's draws as Gaussian
   noise: the interval then holds the check's unexplained error, scaled to the distance that matters.
A check whose measured point falls outside its own 90 % interval has failed; the choice never rests
on such a family when another passed (``unimixer_plan.plan.choose_family``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from unimixer_plan.scaling.posterior import Posterior, Prior, fit_posterior

LEVEL = 0.9


@dataclass(frozen=True)
class HeldOutCheck:
    compute: float  # the held-out point
    samples: float
    actual: float
    predicted: float
    interval: tuple[float, float]  # of a new measurement there
    relative_error: float
    step: dict[str, float]  # {"flops": held-out / largest kept compute, "data": held-out / largest kept data}
    misspecification_sd: float  # tau_check: how far the point lies outside the interval (0 inside)

    @property
    def passed(self) -> bool:
        return self.interval[0] <= self.actual <= self.interval[1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"interval": list(self.interval), "passed": self.passed}


@dataclass(frozen=True)
class Prediction:
    """The law at the target, and anywhere else along the same evidence: ``draws_at`` is the posterior's
    draws plus the check's misspecification term grown to that point's distance (one noise vector for
    every point, so the band a report draws meets the target's interval exactly)."""

    posterior: Posterior
    target: tuple[float, float]  # (compute, samples)
    median: float
    interval: tuple[float, float]
    held_out: HeldOutCheck | None
    reach: tuple[float, float]  # the largest compute and data among the points (where extrapolation starts)
    noise: np.ndarray  # standard normal, one per draw: the misspecification term's direction

    def tau(self, compute: float, samples: float) -> float:
        """The misspecification sd at (compute, samples): 0 without a failed check."""
        check = self.held_out
        if check is None or check.misspecification_sd == 0:
            return 0.0
        d_check = _log_distance(check.step["flops"], check.step["data"])
        d_point = _log_distance(compute / self.reach[0], samples / self.reach[1])
        return check.misspecification_sd * d_point / max(d_check, 1e-9)

    @property
    def misspecification_sd(self) -> float:
        """tau at the target."""
        return self.tau(*self.target)

    def draws_at(self, compute: float, samples: float) -> np.ndarray:
        return self.posterior.draws(compute, samples) + self.tau(compute, samples) * self.noise

    @property
    def draws(self) -> np.ndarray:
        """Draws of the loss at the target, misspecification included (for comparing families)."""
        return self.draws_at(*self.target)

    def band(self, compute: np.ndarray, samples: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Median and central 90 % band along ``compute`` at ``samples``, as the target's interval is made."""
        draws = np.stack([self.draws_at(float(c), samples) for c in np.atleast_1d(compute)], axis=1)
        quantiles = np.quantile(draws, [0.5, (1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
        return quantiles[0], quantiles[1], quantiles[2]


def _log_distance(compute_ratio: float, samples_ratio: float) -> float:
    return math.hypot(math.log(max(compute_ratio, 1.0)), math.log(max(samples_ratio, 1.0)))


def held_out_check(
    compute: np.ndarray, samples: np.ndarray, loss: np.ndarray, prior: Prior, seed: int | Sequence[int]
) -> HeldOutCheck | None:
    """The posterior refitted without the top rung, predicting the top rung's diagonal point (its
    largest data size); None when too few points are left to fit."""
    top = compute == compute.max()
    if not top.any() or top.all():
        return None
    posterior = fit_posterior(compute[~top], samples[~top], loss[~top], prior, seed=seed)
    if posterior is None:
        return None
    target = int(np.flatnonzero(top)[np.argmax(samples[top])])
    curve = posterior.draws(compute[target], samples[target])
    # The noise needs a stream of its own: the posterior's seed would couple it to the draws.
    noise = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]).standard_normal(len(curve))
    measured = curve + posterior.sigma * noise
    low, high = np.quantile(measured, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    predicted = float(np.median(curve))
    actual = float(loss[target])
    return HeldOutCheck(
        compute=float(compute[target]),
        samples=float(samples[target]),
        actual=actual,
        predicted=predicted,
        interval=(float(low), float(high)),
        relative_error=abs(actual - predicted) / actual,
        step={
            "flops": float(compute[target] / compute[~top].max()),
            "data": float(samples[target] / samples[~top].max()),
        },
        misspecification_sd=float(max(0.0, actual - high, low - actual)),
    )


def predict(
    compute: np.ndarray,
    samples: np.ndarray,
    loss: np.ndarray,
    prior: Prior,
    target_compute: float,
    target_samples: float,
    seed: int | Sequence[int],
) -> Prediction | None:
    """The prediction at (target_compute, target_samples) from these points; None without a posterior."""
    compute, samples, loss = (np.asarray(v, dtype=np.float64) for v in (compute, samples, loss))
    posterior = fit_posterior(compute, samples, loss, prior, seed=seed)
    if posterior is None:
        return None
    noise = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1]).standard_normal(len(posterior.alpha))
    prediction = Prediction(
        posterior=posterior,
        target=(float(target_compute), float(target_samples)),
        median=0.0,
        interval=(0.0, 0.0),
        held_out=held_out_check(compute, samples, loss, prior, seed),
        reach=(float(compute.max()), float(samples.max())),
        noise=noise,
    )
    draws = prediction.draws
    low, high = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return replace(prediction, median=float(np.median(draws)), interval=(float(low), float(high)))
