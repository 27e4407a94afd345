"""A Bayesian grid posterior for L(C, N) = E + A (C/C_ref)^-alpha + B (N/N_ref)^-beta, and its
predictions at the target (budget, production data size).

C is forward FLOPs per sample, N the distinct training samples a proxy trained on. Why a posterior and
not a bootstrap: a ladder gives 6-10 points for a 5-parameter law. A residual bootstrap of so few
points collapses (it covered the truth in 0-2 % of simulated 3-point ladders); what is known must
speak instead: the exponents are bounded, the floor lies between the data's Bayes floor and the
observed losses, and proxy noise has a measured size (seed replicates). The posterior states those
priors and lets the points narrow them as far as they can.

Model: L_i = E + A exp(-alpha x_i) + B exp(-beta y_i) + e_i with x = ln C - ln C_ref, y = ln N - ln N_ref
(the references are the points' mean logs, so A and B are the excess losses due to finite compute and
data at the centre of the ladder), e_i ~ N(0, sigma^2) independent. Priors (``Prior``): alpha and beta
log-uniform on their bounds; E uniform on [floor_low, min L + 2 sigma_ref]; A, B >= 0 with a prior flat
in the loss drop each makes across the points (flat in A itself would give slow exponents, nearly
collinear with the floor, a prior volume ~1/alpha and pull fits onto the floor's lower bound), both
marginalised in closed form: given the grid values the model is linear in (A, B), so the integral is a
Gaussian one times the probability that (A, B) lies in the positive quadrant (a bivariate normal
orthant, by Gauss-Legendre quadrature); sigma log-uniform on its bounds, with the seed replicates'
sum of squares as further evidence about it (a chi-square likelihood). alpha, beta, E and sigma live
on a grid. Points without data variation (all at one N) cannot inform B or beta: the data term is
dropped (``data_axis`` False) and a prediction at another N is the compute law's, which the ladder
says. Predictions are posterior predictive draws of the noise-free surface: the median is the point
estimate and the central 90 % interval contains it by construction.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from unimixer_plan.scaling.normal import log_ndtr, ndtri_log
from unimixer_plan.scaling.points import usable_points

ALPHA_POINTS = 24
BETA_POINTS = 20
FLOOR_POINTS = 48
SIGMA_POINTS = 10
SAMPLES = 4000
GIBBS_SWEEPS = 12
QUADRATURE_NODES = 16
PRUNE_NATS = 30.0  # cells this far below the best carry weight < 1e-13
FLOOR_SLACK_SIGMAS = 2.0
# sigma when it is not measured, for the floor's upper bound only: the top of the seed-to-seed
# logloss noise measured on proxies of 3e4-2e6 FLOPs/sample (0.001-0.003).
TYPICAL_PROXY_SIGMA = 0.003
# A posterior "piles up at a bound" when the bound cuts it where its density (on the grid, marginal)
# is still at least this share of its peak: the bound, not the data, ends it there.
EDGE_DENSITY = 0.5
INTERVAL_METHOD = (
    "Bayesian grid posterior of L(C, N) = E + A (C/C_ref)^-alpha + B (N/N_ref)^-beta: exponents log-uniform, "
    "floor uniform between floor_low and the lowest loss, A and B flat in their drops and marginalised, sigma "
    "marginalised with the seed replicates as evidence; posterior predictive median and central interval"
)
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
_NODES01, _WEIGHTS01 = (_NODES + 1) / 2, _WEIGHTS / 2


@dataclass(frozen=True)
class Prior:
    """What is known before the points: each bound is stated in scaling.json next to the interval."""

    floor_low: float = 0.0  # the Bayes floor on synthetic data; 0 on real data
    # Exponents of the loss excess over the floor: what is reported for ranking models and language
    # models with a floor lies inside (0.1-0.35), and the planted-truth calibration draws from the same
    # range (``scaling.calibration``). An upper bound of 1 let flat ladders pick fast exponents and high
    # floors, and its 90 % intervals covered 85 % of planted truths instead of 89 %.
    alpha_low: float = 0.05
    alpha_high: float = 0.6
    beta_low: float = 0.05
    beta_high: float = 0.6
    sigma_low: float = 5e-4
    sigma_high: float = 3e-2
    # Seed replicates: the pooled sum of squared deviations from each replicate group's mean, and its
    # degrees of freedom (0: none measured; sigma is then set by the points and its bounds alone).
    replicate_ss: float = 0.0
    replicate_dof: int = 0

    @property
    def measured_sigma(self) -> float | None:
        """The replicates' pooled standard deviation, when there are any."""
        return float(np.sqrt(self.replicate_ss / self.replicate_dof)) if self.replicate_dof > 0 else None

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self) | {"measured_sigma": self.measured_sigma}

    @classmethod
    def from_dict(cls, data: dict[str, float | int | None] | None) -> Prior:
        data = {k: v for k, v in (data or {}).items() if k != "measured_sigma"}
        return cls(**data)


@dataclass(frozen=True)
class Posterior:
    """Joint posterior draws of (alpha, beta, E, A, B, sigma); ``at_bound`` names each parameter whose
    posterior piles up at an edge of its prior range (the interval there is the prior's, not the data's)."""

    prior: Prior
    points: int
    data_axis: bool  # False: every point at one N, the data term is not in the model
    log_c_reference: float
    log_n_reference: float
    floor_high: float
    alpha: np.ndarray
    beta: np.ndarray
    floor: np.ndarray
    scale_compute: np.ndarray  # A
    scale_data: np.ndarray  # B (0 without a data axis)
    sigma: np.ndarray
    at_bound: tuple[str, ...]

    def curves(self, compute: float | np.ndarray, samples: float | np.ndarray) -> np.ndarray:
        """Draws of the noise-free loss at each (compute, samples) pair (broadcast): (draws, points)."""
        compute, samples = np.broadcast_arrays(np.atleast_1d(compute), np.atleast_1d(samples))
        x = np.log(compute.astype(np.float64)) - self.log_c_reference
        y = np.log(samples.astype(np.float64)) - self.log_n_reference
        surface = self.floor[:, None] + self.scale_compute[:, None] * np.exp(-self.alpha[:, None] * x[None, :])
        return surface + self.scale_data[:, None] * np.exp(-self.beta[:, None] * y[None, :])

    def draws(self, compute: float, samples: float) -> np.ndarray:
        """Draws of the loss at one point (for comparing families)."""
        return self.curves(compute, samples)[:, 0]

    def band(
        self, compute: np.ndarray, samples: float | np.ndarray, level: float = 0.9
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Median and central ``level`` band of the surface along (compute, samples)."""
        quantiles = np.quantile(self.curves(compute, samples), [0.5, (1 - level) / 2, (1 + level) / 2], axis=0)
        return quantiles[0], quantiles[1], quantiles[2]

    def predict(self, compute: float, samples: float, level: float = 0.9) -> tuple[float, tuple[float, float]]:
        """The posterior predictive median at (compute, samples) and its central ``level`` interval."""
        median, low, high = self.band(np.array([compute]), samples, level)
        return float(median[0]), (float(low[0]), float(high[0]))

    def point_estimate(self) -> dict[str, float]:
        """Posterior medians of the parameters (for display: the surface itself is drawn, not these)."""
        return {
            "floor": float(np.median(self.floor)),
            "scale_compute": float(np.median(self.scale_compute)),
            "alpha": float(np.median(self.alpha)),
            "scale_data": float(np.median(self.scale_data)),
            "beta": float(np.median(self.beta)),
            "sigma": float(np.median(self.sigma)),
            "log_c_reference": self.log_c_reference,
            "log_n_reference": self.log_n_reference,
        }


def family_seed(seed: int, family: str) -> list[int]:
    """An RNG seed per family: draws of different families must be independent (the same stream
    for two families would couple their draws and bias which one looks best)."""
    return [seed, zlib.crc32(family.encode())]


def log_orthant(a: np.ndarray, b: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """log P(U <= a, V <= b) for standard normals U, V with correlation rho (the bivariate normal CDF),
    as log Phi(a) + log E[Phi((b - rho U) / sqrt(1 - rho^2)) | U <= a], the expectation by Gauss-Legendre
    over u = Phi(U) in (0, Phi(a)); accurate in the far lower tail, where the posterior pins a scale at 0."""
    a, b, rho = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, rho)))
    rho = np.clip(rho, -0.999, 0.999)
    log_a = log_ndtr(a)
    u = ndtri_log(log_a[..., None] + np.log(_NODES01))  # (..., nodes): U at the quadrature nodes
    h = (b[..., None] - rho[..., None] * u) / np.sqrt(1 - rho[..., None] ** 2)
    terms = log_ndtr(h) + np.log(_WEIGHTS01)
    peak = terms.max(axis=-1)
    return log_a + peak + np.log(np.exp(terms - peak[..., None]).sum(axis=-1))


def _cut_edges(marginal: np.ndarray) -> tuple[bool, bool]:
    """Whether the lower and the upper bound of a grid cut the marginal posterior near its peak."""
    peak = marginal.max()
    return bool(marginal[0] >= EDGE_DENSITY * peak), bool(marginal[-1] >= EDGE_DENSITY * peak)


@dataclass(frozen=True)
class _Grid:
    alpha: np.ndarray  # (Ka,)
    beta: np.ndarray  # (Kb,) ; one value (0) without a data axis
    floor: np.ndarray  # (M,)
    sigma: np.ndarray  # (S,)


def _log_evidence(
    x: np.ndarray, y: np.ndarray | None, loss: np.ndarray, grid: _Grid, prior: Prior
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """log p(loss, replicates | alpha, beta, E, sigma) + log prior, with A and B integrated out over the
    positive quadrant, on the grid: shape (Ka, Kb, M, S). Also what drawing (A, B) given a cell needs."""
    n = len(loss)
    bc = np.exp(-grid.alpha[:, None] * x[None, :])  # (Ka, n)
    residual = loss[None, :] - grid.floor[:, None]  # (M, n)
    s = grid.sigma[None, None, None, :]
    if y is None:  # one column: the compute term alone
        g_aa = (bc**2).sum(1)[:, None]  # (Ka, 1)
        r_a = (bc @ residual.T)[:, None, :]  # (Ka, 1, M)
        theta_a = r_a / g_aa[..., None]
        quad = (residual**2).sum(1)[None, None, :] - r_a * theta_a
        inv_aa = 1 / g_aa
        log_det = np.log(g_aa)
        sd_a = np.sqrt(inv_aa)[..., None, None] * s  # (Ka, 1, 1, S)
        z = theta_a[..., None] / sd_a  # (Ka, 1, M, S)
        log_orth = np.zeros(z.shape)
        tail = z < 8.0  # log Phi(z) > -1e-15 above: only the rest is computed
        log_orth[tail] = log_ndtr(z[tail])
        log_jacobian = np.log(np.ptp(bc, axis=1))[:, None]
        free = 1
        extra = {"theta_a": theta_a, "theta_b": np.zeros_like(theta_a), "inv_aa": inv_aa, "inv_bb": None, "rho": None}
    else:
        bn = np.exp(-grid.beta[:, None] * y[None, :])  # (Kb, n)
        g_aa = (bc**2).sum(1)[:, None]  # (Ka, 1)
        g_bb = (bn**2).sum(1)[None, :]  # (1, Kb)
        g_ab = bc @ bn.T  # (Ka, Kb)
        det = np.maximum(g_aa * g_bb - g_ab**2, 1e-12 * g_aa * g_bb)
        inv_aa, inv_bb, inv_ab = g_bb / det, g_aa / det, -g_ab / det
        r_a = (bc @ residual.T)[:, None, :]  # (Ka, 1, M)
        r_b = (bn @ residual.T)[None, :, :]  # (1, Kb, M)
        theta_a = inv_aa[..., None] * r_a + inv_ab[..., None] * r_b  # (Ka, Kb, M)
        theta_b = inv_ab[..., None] * r_a + inv_bb[..., None] * r_b
        quad = (residual**2).sum(1)[None, None, :] - (r_a * theta_a + r_b * theta_b)
        log_det = np.log(det)
        rho = inv_ab / np.sqrt(inv_aa * inv_bb)  # (Ka, Kb)
        za = theta_a[..., None] / (np.sqrt(inv_aa)[..., None, None] * s)  # (Ka, Kb, M, S)
        zb = theta_b[..., None] / (np.sqrt(inv_bb)[..., None, None] * s)
        log_jacobian = np.log(np.ptp(bc, axis=1))[:, None] + np.log(np.ptp(bn, axis=1))[None, :]
        free = 2
        extra = {"theta_a": theta_a, "theta_b": theta_b, "inv_aa": inv_aa, "inv_bb": inv_bb, "rho": rho}
    quad = np.maximum(quad, 0.0)[..., None]
    log_lik = (
        log_jacobian[..., None, None] - (n - free) * np.log(s) - quad / (2 * s**2) - 0.5 * log_det[..., None, None]
    )
    if prior.replicate_dof > 0:  # replicates: (dof) s^2 / sigma^2 ~ chi^2(dof)
        log_lik = log_lik - prior.replicate_dof * np.log(s) - prior.replicate_ss / (2 * s**2)
    if y is None:
        return log_lik + log_orth, extra
    # The orthant term is <= 0 and costs most of the fit: compute it only where the rest leaves a cell
    # within PRUNE_NATS of the best; a cell below that stays negligible whatever its orthant term,
    # unless the orthant lowers the best cells as far, and then the cut is widened.
    log_orth = np.zeros(za.shape)
    done = np.zeros(za.shape, dtype=bool)
    rho_cells = np.broadcast_to(rho[..., None, None], za.shape)
    cut = log_lik.max() - PRUNE_NATS
    while True:
        todo = (log_lik > cut) & ~done & (np.minimum(za, zb) < 8.0)
        log_orth[todo] = log_orthant(za[todo], zb[todo], rho_cells[todo])
        done |= log_lik > cut
        best = (log_lik + log_orth)[done].max()
        if best - PRUNE_NATS >= cut or done.all():
            return np.where(done, log_lik + log_orth, -np.inf), extra
        cut = best - PRUNE_NATS


def _truncated_normal(rng: np.random.Generator, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Draws of N(mean, sd^2) truncated to >= 0, by the inverse CDF in log space (no underflow)."""
    lower = -mean / sd
    z = -ndtri_log(np.log(rng.uniform(1e-300, 1.0, mean.shape)) + log_ndtr(-lower))
    return np.maximum(mean + sd * np.maximum(z, lower), 0.0)


def fit_posterior(
    compute: np.ndarray,
    samples: np.ndarray,
    loss: np.ndarray,
    prior: Prior | None = None,
    draws: int = SAMPLES,
    seed: int | Sequence[int] = 0,
) -> Posterior | None:
    """The grid posterior of the law on these points; None with fewer than MIN_POINTS distinct compute
    values (two points cannot bound a curve's shape)."""
    prior = prior or Prior()
    points = usable_points(compute, samples, loss)
    if points is None:
        return None
    compute, samples, loss = points
    log_c_ref, log_n_ref = float(np.log(compute).mean()), float(np.log(samples).mean())
    x = np.log(compute) - log_c_ref
    data_axis = len(np.unique(samples)) >= 2
    y = np.log(samples) - log_n_ref if data_axis else None
    slack = FLOOR_SLACK_SIGMAS * (prior.measured_sigma or TYPICAL_PROXY_SIGMA)
    floor_low = min(prior.floor_low, float(loss.min()))  # a loss below the stated floor: the data win
    floor_high = float(loss.min()) + slack
    edges = np.linspace(floor_low, floor_high, FLOOR_POINTS + 1)
    grid = _Grid(
        alpha=np.geomspace(prior.alpha_low, prior.alpha_high, ALPHA_POINTS),
        beta=np.geomspace(prior.beta_low, prior.beta_high, BETA_POINTS) if data_axis else np.zeros(1),
        floor=(edges[:-1] + edges[1:]) / 2,
        sigma=np.geomspace(prior.sigma_low, prior.sigma_high, SIGMA_POINTS),
    )
    log_post, extra = _log_evidence(x, y, loss, grid, prior)  # uniform grid weights: the priors
    weights = np.exp(log_post - log_post.max())
    weights /= weights.sum()
    at_bound = []
    marginals = [("alpha", weights.sum((1, 2, 3))), ("floor", weights.sum((0, 1, 3)))]
    if data_axis:
        marginals.insert(1, ("beta", weights.sum((0, 2, 3))))
    for name, marginal in marginals:
        low, high = _cut_edges(marginal)
        at_bound += [f"{name}_low"] * low + [f"{name}_high"] * high
    rng = np.random.default_rng(seed)
    cells = rng.choice(weights.size, size=draws, p=weights.ravel())
    ka, kb, m, si = np.unravel_index(cells, weights.shape)
    sigma = grid.sigma[si]
    if data_axis:
        scale_compute, scale_data = _draw_scales(rng, extra, ka, kb, m, sigma)
    else:
        mean = extra["theta_a"][ka, 0, m]
        scale_compute = _truncated_normal(rng, mean, sigma * np.sqrt(extra["inv_aa"][ka, 0]))
        scale_data = np.zeros(draws)
    return Posterior(
        prior=prior,
        points=len(loss),
        data_axis=data_axis,
        log_c_reference=log_c_ref,
        log_n_reference=log_n_ref,
        floor_high=floor_high,
        alpha=grid.alpha[ka],
        beta=grid.beta[kb],
        floor=grid.floor[m],
        scale_compute=scale_compute,
        scale_data=scale_data,
        sigma=sigma,
        at_bound=tuple(at_bound),
    )


def _draw_scales(
    rng: np.random.Generator, extra: dict[str, np.ndarray], ka: np.ndarray, kb: np.ndarray, m: np.ndarray, sigma
) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) | cell: a bivariate normal truncated to the positive quadrant, by Gibbs sweeps (each
    conditional is a truncated univariate normal)."""
    mean_a, mean_b = extra["theta_a"][ka, kb, m], extra["theta_b"][ka, kb, m]
    sd_a = sigma * np.sqrt(extra["inv_aa"][ka, kb])
    sd_b = sigma * np.sqrt(extra["inv_bb"][ka, kb])
    rho = extra["rho"][ka, kb]
    conditional = np.sqrt(1 - np.clip(rho, -0.999, 0.999) ** 2)
    a, b = np.maximum(mean_a, 0.0), np.maximum(mean_b, 0.0)
    for _ in range(GIBBS_SWEEPS):
        a = _truncated_normal(rng, mean_a + rho * sd_a / sd_b * (b - mean_b), sd_a * conditional)
        b = _truncated_normal(rng, mean_b + rho * sd_b / sd_a * (a - mean_a), sd_b * conditional)
    return a, b


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
