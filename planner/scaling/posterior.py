"""A Bayesian grid posterior for L(C) = E + A C^-alpha, and its predictions at the target.

Why not a bootstrap: a ladder gives 3-8 points for a 3-parameter law. With 3 points the fit is exact,
the residuals are zero, and a residual bootstrap returns an interval of width ~0 (it covered the
truth in 0-2 % of simulated ladders). What is known must speak instead: the exponent is bounded, the
floor lies between the data's Bayes floor and the observed losses, and proxy noise has a measured
size. The posterior states those priors and lets the points narrow them as far as they can.

Model: L_i = E + A exp(-alpha x_i) + e_i, x_i = ln C_i - ln C_ref (C_ref: the points' geometric mean
compute, so A is the loss above the floor inside the data), e_i ~ N(0, sigma^2), independent.
Priors (``Prior``): alpha log-uniform on [0.02, 1.0]; E uniform on [floor_low, min L + 2 sigma_ref]
(a floor cannot sit above every observed loss by more than the noise); A >= 0 with a prior flat in
the loss drop it makes across the points, marginalised in closed form (a truncated Gaussian
integral); sigma the measured proxy noise when
given, else log-uniform on [5e-4, 3e-2] and marginalised. alpha, E and sigma live on a grid.
Predictions are posterior predictive draws of the noise-free curve: the median is the point estimate
and the central 90 % interval contains it by construction.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from unimixer_plan.scaling.normal import log_ndtr, ndtri_log
from unimixer_plan.scaling.points import usable_points

ALPHA_POINTS = 96
FLOOR_POINTS = 160
SIGMA_POINTS = 14
SAMPLES = 4000
FLOOR_SLACK_SIGMAS = 2.0
# sigma when it is not measured, for the floor's upper bound only: the top of the seed-to-seed
# logloss noise measured on proxies of 3e4-2e6 FLOPs/sample (0.001-0.003).
TYPICAL_PROXY_SIGMA = 0.003
# A posterior "piles up at a bound" when the bound cuts it where its density (on the grid, marginal)
# is still at least this share of its peak: the bound, not the data, ends it there.
EDGE_DENSITY = 0.5
INTERVAL_METHOD = (
    "Bayesian grid posterior: alpha log-uniform, floor uniform between floor_low and the lowest loss, "
    "scale flat and marginalised, sigma measured or marginalised; posterior predictive median and central interval"
)


@dataclass(frozen=True)
class Prior:
    """What is known before the points: each bound is stated in scaling.json next to the interval."""

    floor_low: float = 0.0  # the Bayes floor on synthetic data; 0 on real data
    alpha_low: float = 0.02
    alpha_high: float = 1.0
    sigma: float | None = None  # measured proxy noise (logloss sd); None: marginalised
    sigma_low: float = 5e-4
    sigma_high: float = 3e-2

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, float | None] | None) -> Prior:
        return cls(**(data or {}))


@dataclass(frozen=True)
class Posterior:
    """Joint posterior draws of (alpha, E, A, sigma); ``at_bound`` names each parameter whose posterior
    piles up at an edge of its prior range (the interval there is the prior's, not the data's)."""

    prior: Prior
    points: int
    log_c_reference: float
    floor_high: float
    alpha: np.ndarray
    floor: np.ndarray
    scale: np.ndarray
    sigma: np.ndarray
    at_bound: tuple[str, ...]

    def curves(self, compute: float | np.ndarray) -> np.ndarray:
        """Draws of the noise-free loss at each ``compute``: shape (samples, len(compute))."""
        x = np.log(np.atleast_1d(np.asarray(compute, dtype=np.float64))) - self.log_c_reference
        return self.floor[:, None] + self.scale[:, None] * np.exp(-self.alpha[:, None] * x[None, :])

    def draws(self, compute: float) -> np.ndarray:
        """Draws of the loss at one compute (for comparing families)."""
        return self.curves(compute)[:, 0]

    def band(self, compute: np.ndarray, level: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Median and central ``level`` band of the curve over ``compute``."""
        quantiles = np.quantile(self.curves(compute), [0.5, (1 - level) / 2, (1 + level) / 2], axis=0)
        return quantiles[0], quantiles[1], quantiles[2]

    def predict(self, compute: float, level: float = 0.9) -> tuple[float, tuple[float, float]]:
        """The posterior predictive median at ``compute`` and its central ``level`` interval."""
        median, low, high = self.band(np.array([compute]), level)
        return float(median[0]), (float(low[0]), float(high[0]))


def family_seed(seed: int, family: str) -> list[int]:
    """An RNG seed per family: draws of different families must be independent (the same stream
    for two families would couple their draws and bias which one looks best)."""
    return [seed, zlib.crc32(family.encode())]


def _log_likelihood(
    x: np.ndarray, loss: np.ndarray, alpha: np.ndarray, floor: np.ndarray, sigma: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log p(loss | alpha, E, sigma) + log p(alpha, E, sigma) with A integrated out over [0, inf), on the grid
    (K alphas, M floors, S sigmas); also A's conditional mean and sqrt(sum b^2) per (alpha, floor)."""
    n = len(loss)
    basis = np.exp(-alpha[:, None] * x[None, :])  # (K, n)
    sbb = (basis**2).sum(1)  # (K,)
    residual = loss[None, :] - floor[:, None]  # (M, n)
    srb = basis @ residual.T  # (K, M)
    srr = (residual**2).sum(1)  # (M,)
    a_hat = srb / sbb[:, None]
    q = np.maximum(srr[None, :] - srb**2 / sbb[:, None], 0.0)  # least-squares residual at A = a_hat
    root = np.sqrt(sbb)[:, None]
    s = sigma[None, None, :]
    # A's prior is flat in the loss drop it makes across the points, A (b_first - b_last), not in A:
    # flat in A would give slow exponents (nearly collinear with the floor) a prior volume ~1/alpha
    # and pull fits onto the floor's lower bound, predicting too much improvement.
    log_jacobian = np.log(np.ptp(basis, axis=1))[:, None, None]
    z = (a_hat * root)[:, :, None] / s
    log_phi = np.zeros_like(z)  # log Phi(z) > -1e-15 above z = 8: only the rest is computed
    low = z < 8.0
    log_phi[low] = log_ndtr(z[low])
    log_lik = log_jacobian - (n - 1) * np.log(s) - q[:, :, None] / (2 * s**2) - np.log(root)[:, :, None] + log_phi
    return log_lik, a_hat, root


def _cut_edges(marginal: np.ndarray) -> tuple[bool, bool]:
    """Whether the lower and the upper bound of a grid cut the marginal posterior near its peak."""
    peak = marginal.max()
    return bool(marginal[0] >= EDGE_DENSITY * peak), bool(marginal[-1] >= EDGE_DENSITY * peak)


def fit_posterior(
    compute: np.ndarray,
    loss: np.ndarray,
    prior: Prior | None = None,
    samples: int = SAMPLES,
    seed: int | Sequence[int] = 0,
) -> Posterior | None:
    """The grid posterior of the power law on these points; None with fewer than MIN_POINTS distinct
    compute values (two points cannot bound a curve's shape)."""
    prior = prior or Prior()
    points = usable_points(compute, loss)
    if points is None:
        return None
    compute, loss, log_ref = points
    x = np.log(compute) - log_ref
    alpha = np.geomspace(prior.alpha_low, prior.alpha_high, ALPHA_POINTS)
    slack = FLOOR_SLACK_SIGMAS * (prior.sigma if prior.sigma is not None else TYPICAL_PROXY_SIGMA)
    floor_low = min(prior.floor_low, float(loss.min()))  # a loss below the stated floor: the data win
    floor_high = float(loss.min()) + slack
    edges = np.linspace(floor_low, floor_high, FLOOR_POINTS + 1)
    floor = (edges[:-1] + edges[1:]) / 2
    if prior.sigma is not None:
        sigma = np.array([prior.sigma])
    else:
        sigma = np.geomspace(prior.sigma_low, prior.sigma_high, SIGMA_POINTS)
    log_post, a_hat, root = _log_likelihood(x, loss, alpha, floor, sigma)  # uniform weights: the priors
    weights = np.exp(log_post - log_post.max())
    weights /= weights.sum()
    at_bound = []
    for name, marginal in (("alpha", weights.sum((1, 2))), ("floor", weights.sum((0, 2)))):
        low, high = _cut_edges(marginal)
        at_bound += [f"{name}_low"] * low + [f"{name}_high"] * high
    rng = np.random.default_rng(seed)
    cells = rng.choice(weights.size, size=samples, p=weights.ravel())
    k, m, s = np.unravel_index(cells, weights.shape)
    # A | alpha, E, sigma is N(a_hat, sd^2) truncated to A >= 0: draw z >= lower by the inverse CDF.
    sd = sigma[s] / root[k, 0]
    mean = a_hat[k, m]
    lower = -mean / sd
    z = -ndtri_log(np.log(rng.uniform(1e-300, 1.0, samples)) + log_ndtr(-lower))
    scale = np.maximum(mean + sd * np.maximum(z, lower), 0.0)
    return Posterior(
        prior=prior,
        points=len(loss),
        log_c_reference=log_ref,
        floor_high=floor_high,
        alpha=alpha[k],
        floor=floor[m],
        scale=scale,
        sigma=sigma[s],
        at_bound=tuple(at_bound),
    )


def probability_lowest(draws: dict[str, np.ndarray]) -> dict[str, float]:
    """Per name, the share of joint draws (one independent draw of each) in which it is the lowest:
    the probability that it has the lowest loss. Sums to 1; ties go to the first name in order."""
    names = list(draws)
    if not names:
        return {}
    stacked = np.stack([np.asarray(draws[n], dtype=np.float64) for n in names])
    winners = np.argmin(stacked, axis=0)
    counts = np.bincount(winners, minlength=len(names))
    return {name: float(c / stacked.shape[1]) for name, c in zip(names, counts, strict=True)}
