"""Auto-scaling: proxies on a ladder of budgets, a scaling law per family, and a scale-up.

A 2e9-FLOPs model cannot be trained many times here, so the planner:
1. searches a ladder of proxy budgets target/4^k that train in seconds;
2. per family, fits the best validation logloss against FLOPs across rungs
   (``unimixer_plan.scaling.fits`` for the point fit, ``scaling.posterior`` for the prediction: a
   Bayesian grid posterior whose median and central 90 % interval do not collapse with 3 points),
   with a held-out check (the largest rung predicted from the others) and how each shape knob
   moves with scale;
3. scales the best proxy shape up along those trends, solving width (and depth, when
   the width range runs out) with the analytic cost so that FLOPs land in
   [0.95, 1.0] x the budget and within the params budget; a latency budget is measured
   on the full-size model and shrinks the target until it holds;
4. chooses the family most likely to have the lowest logloss at its scaled-up target, from joint
   posterior draws (see ``unimixer_plan.plan.finish_ladder``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from unimixer_plan.mixers import ConfigError, ModelConfig, analytic_cost, build_model
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.profiling import measure_latency_ms, resolve_device
from unimixer_plan.run.trial_record import TrialRecord
from unimixer_plan.scaling.fits import PowerLawFit, fit_log_trend, fit_power_law
from unimixer_plan.scaling.posterior import INTERVAL_METHOD, Posterior, Prior, family_seed, fit_posterior
from unimixer_plan.search_spaces import FamilySpace, IntRange, Limits, solve_width
from unimixer_plan.search_spaces.cost_aware import family_knobs

LADDER_FACTOR = 4
MAX_RUNGS = 5
MIN_RUNGS = 3
# Training FLOPs one proxy trial may cost on a CPU (10-20 s on one core); x100 with a GPU.
PROXY_TRAIN_FLOPS_CPU = 6e11
# Epochs a proxy typically trains before early stopping (measured 4-7 on the default data).
TYPICAL_EPOCHS = 6
TARGET_MAX_D_MODEL = 8192  # beyond this width the scale-up adds depth instead
LADDER_MIN_COST_LEVEL = 0.25  # proxies use at least a quarter of their rung's budget
FILL_LOW = 0.95  # a scaled-up config uses at least this share of the FLOPs budget


def proxy_max_flops(plan: PlanConfig) -> float:
    if plan.proxy_max_flops is not None:
        return plan.proxy_max_flops
    per_trial = PROXY_TRAIN_FLOPS_CPU * (100 if plan.gpus_per_trial > 0 else 1)
    return per_trial / (3 * plan.fidelity * TYPICAL_EPOCHS)


def ladder_budgets(target: float, top: float, bottom: float) -> list[float]:
    """target / 4^k for the k that put rungs in [bottom, top], largest MAX_RUNGS of them, ascending."""
    budget = target
    while budget > top:
        budget /= LADDER_FACTOR
    rungs = []
    while budget >= bottom and len(rungs) < MAX_RUNGS:
        rungs.append(budget)
        budget /= LADDER_FACTOR
    return sorted(rungs)


@dataclass
class FamilyScaling:
    family: str
    points: list[dict[str, Any]]  # the best full-fidelity trial per rung (scaling.json's form)
    fit: PowerLawFit | None = None
    held_out: dict[str, Any] | None = None
    trends: dict[str, float] = field(default_factory=dict)  # knob -> log-log slope
    target_config: ModelConfig | None = None
    target_flops: int | None = None
    target_params: int | None = None
    target_latency_ms: float | None = None
    predicted_logloss: float | None = None  # the posterior predictive median at target_flops
    interval: tuple[float, float] | None = None  # its central 90 % interval
    prior: Prior = field(default_factory=Prior)
    posterior: Posterior | None = None
    note: str = ""

    @property
    def at_bound(self) -> list[str]:
        """Parameters whose posterior piles up at a prior bound (the prior, not the data, sets them)."""
        return list(self.posterior.at_bound) if self.posterior else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "points": self.points,
            "fit": self.fit.to_dict() if self.fit else None,
            "held_out": self.held_out,
            "trends": self.trends,
            "target_config": self.target_config.to_dict() if self.target_config else None,
            "target_flops": self.target_flops,
            "target_params": self.target_params,
            "target_latency_ms": self.target_latency_ms,
            "predicted_logloss": self.predicted_logloss,
            "interval": list(self.interval) if self.interval else None,
            "interval_method": INTERVAL_METHOD,
            "prior": self.prior.to_dict(),
            "at_bound": self.at_bound,
            "note": self.note,
        }


def best_per_rung(rows: list[TrialRecord], family: str) -> list[TrialRecord]:
    best: dict[int, TrialRecord] = {}
    for row in rows:
        if row.family != family or not row.is_complete:
            continue
        if row.rung not in best or row.val_logloss < best[row.rung].val_logloss:
            best[row.rung] = row
    return [best[r] for r in sorted(best)]


def snap(domain: tuple[int, ...] | IntRange, value: float) -> int:
    """The allowed value nearest to ``value`` in log space."""
    if isinstance(domain, IntRange):
        return int(min(max(round(value), domain.low), domain.high))
    return int(min(domain, key=lambda option: abs(math.log(option) - math.log(max(value, 1e-9)))))


def scaled_knobs(space: FamilySpace, best: list[TrialRecord], target: float) -> tuple[dict[str, int], dict]:
    """The top proxy's knobs moved along the per-knob trends to the target FLOPs."""
    top = best[-1]
    compute = np.array([row.flops for row in best], dtype=float)
    knobs, slopes = {}, {}
    for knob, domain in space.knobs.items():
        trend = fit_log_trend(compute, np.array([row.knobs[knob] for row in best], dtype=float))
        if trend is None:
            knobs[knob] = int(top.knobs[knob])
            continue
        slopes[knob] = trend.slope
        # Move from the top proxy's own value by the fitted slope (not from the regression line),
        # so the scale-up starts at a shape that was actually measured.
        knobs[knob] = snap(domain, top.knobs[knob] * (target / top.flops) ** trend.slope)
    return family_knobs(space, knobs), slopes


def fill_budget(
    space: FamilySpace, knobs: dict[str, int], limits: Limits, schema: dict[str, Any]
) -> ModelConfig | None:
    """Widest config at these knobs within limits; when width alone cannot reach FILL_LOW of the
    FLOPs budget, add depth. Returns the config whose FLOPs come closest to the budget from below."""
    wide = FamilySpace(space.family, space.knobs, IntRange(space.d_model.low, TARGET_MAX_D_MODEL))
    best: ModelConfig | None = None
    depth = knobs["depth"]
    for extra in range(0, 4 * max(depth, 1)):
        try:
            config = solve_width(wide, {**knobs, "depth": depth + extra}, limits, schema)
        except ConfigError:
            config = None
        if config is None:
            break
        if best is None or analytic_cost(config).flops > analytic_cost(best).flops:
            best = config
        if limits.flops is None or analytic_cost(config).flops >= FILL_LOW * limits.flops:
            break
    return best


def fit_within_latency(
    config: ModelConfig,
    space: FamilySpace,
    knobs: dict[str, int],
    limits: Limits,
    plan: PlanConfig,
    schema: dict[str, Any],
) -> tuple[ModelConfig | None, float | None]:
    """Measure the full-size model; shrink the FLOPs target until the latency budget holds."""
    budget = plan.budget.latency_ms
    if budget is None:
        return config, None
    device = resolve_device(plan.budget.device)
    for _ in range(8):
        latency = measure_latency_ms(build_model(config), plan.budget.batch_size, device, min_run_time=0.2)
        if latency <= budget:
            return config, latency
        shrink = 0.9 * budget / latency
        current = analytic_cost(config)
        limits = Limits(flops=current.flops * shrink, params=limits.params)
        smaller = fill_budget(space, knobs, limits, schema)
        if smaller is None:
            return None, latency
        config = smaller
    return None, latency


def held_out_check(
    compute: np.ndarray, loss: np.ndarray, prior: Prior, seed: int | list[int], level: float = 0.9
) -> dict[str, Any] | None:
    """The posterior refitted without the largest rung, predicting it: the prediction's own
    extrapolation check, made the way the target's prediction is made (median, and the central
    ``level`` interval of a new measurement there, noise included, since the rung's loss is one)."""
    compute = np.asarray(compute, dtype=np.float64)
    loss = np.asarray(loss, dtype=np.float64)
    largest = int(np.argmax(compute))
    rest = np.arange(len(compute)) != largest
    posterior = fit_posterior(compute[rest], loss[rest], prior, seed=seed)
    if posterior is None:
        return None
    curve = posterior.draws(compute[largest])
    # The noise needs a stream of its own: the posterior's seed would couple it to the draws.
    noise = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]).standard_normal(len(curve))
    measured = curve + posterior.sigma * noise
    low, high = np.quantile(measured, [(1 - level) / 2, (1 + level) / 2])
    predicted = float(np.median(curve))
    return {
        "compute": float(compute[largest]),
        "actual": float(loss[largest]),
        "predicted": predicted,
        "relative_error": float(abs(predicted - loss[largest]) / loss[largest]),
        "extrapolation_factor": float(compute[largest] / compute[rest].max()),
        "interval": [float(low), float(high)],
    }


def analyse_family(
    family: str,
    rows: list[TrialRecord],
    plan: PlanConfig,
    space: FamilySpace,
    schema: dict[str, Any],
    target_flops: float,
    prior: Prior | None = None,
) -> FamilyScaling:
    """One family's points, fits and scaled-up target. ``prior`` bounds the posterior (the floor's
    lower bound is the data's Bayes floor when known)."""
    best = best_per_rung(rows, family)
    result = FamilyScaling(
        family=family,
        points=[{"rung": r.rung, "trial_id": r.trial_id, "flops": r.flops, "val_logloss": r.val_logloss} for r in best],
        prior=prior or Prior(),
    )
    if len(best) < 3:
        result.note = f"no fit: {len(best)} rung(s) with a full-fidelity trial, 3 needed"
        return result
    compute = np.array([r.flops for r in best], dtype=float)
    loss = np.array([r.val_logloss for r in best], dtype=float)
    result.fit = fit_power_law(compute, loss, floor_low=result.prior.floor_low)
    result.posterior = fit_posterior(compute, loss, result.prior, seed=family_seed(plan.seed, family))
    if result.fit is None or result.posterior is None:
        result.note = "no fit: fewer than 3 distinct FLOPs among the rungs' best trials"
        return result
    if len(best) >= 4:
        result.held_out = held_out_check(compute, loss, result.prior, family_seed(plan.seed, family))
    knobs, result.trends = scaled_knobs(space, best, target_flops)
    limits = Limits(flops=plan.budget.flops, params=plan.budget.params)
    config = fill_budget(space, knobs, limits, schema)
    if config is None:
        result.note = "no valid configuration of the scaled shape fits the budgets"
        return result
    config, latency = fit_within_latency(config, space, knobs, limits, plan, schema)
    if config is None:
        result.note = f"the scaled shape cannot meet --latency-ms {plan.budget.latency_ms} (measured {latency:.1f} ms)"
        return result
    cost = analytic_cost(config)
    result.target_config = config
    result.target_flops, result.target_params, result.target_latency_ms = cost.flops, cost.params_dense, latency
    result.predicted_logloss, result.interval = result.posterior.predict(cost.flops)
    return result
