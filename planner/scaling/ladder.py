"""Auto-scaling: proxies on a ladder of budgets and data sizes, a scaling law per family, and a scale-up.

A 2e9-FLOPs model cannot be trained many times here, so the planner:
1. searches a ladder of proxy budgets target/4^k that train in seconds to a minute, rung k on
   N_1 * 2^(k-1) distinct samples (``scaling.design``), and trains each rung's best shape of every
   family again on a quarter of the rung's rows and, below the top rung, with more seeds (``design``);
2. per family, fits L(C, N) = E + A C^-alpha + B N^-beta to the best trial per rung and its
   quarter-data point (``scaling.prediction``: the Bayesian grid posterior, its held-out check on the
   top rung and the check's misspecification term), with the seed replicates as the noise's evidence;
3. scales the best proxy shape up along the knobs' trends, solving width (and depth, when the width
   range runs out) with the analytic cost so that FLOPs land in [0.95, 1.0] x the budget and within
   the params budget; a latency budget is measured on the full-size model and shrinks the target
   until it holds;
4. predicts each family's target at the data the production model trains on (``--train-samples``),
   and the plan chooses the family most likely to be lowest there (``unimixer_plan.plan``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from unimixer_plan.mixers import ConfigError, ModelConfig, analytic_cost, build_model
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.profiling import measure_latency_ms, resolve_device
from unimixer_plan.run.trial_record import TrialRecord, TrialRole
from unimixer_plan.scaling.design import LADDER_FACTOR, rung_samples
from unimixer_plan.scaling.posterior import INTERVAL_METHOD, Prior, family_seed
from unimixer_plan.scaling.prediction import Prediction, predict
from unimixer_plan.scaling.trends import fit_log_trend
from unimixer_plan.search_spaces import FamilySpace, IntRange, Limits, solve_width
from unimixer_plan.search_spaces.cost_aware import family_knobs

MAX_RUNGS = 5
MIN_RUNGS = 3
# Training FLOPs the top rung's proxy may cost on one CPU core (about a minute); x100 with a GPU.
PROXY_TRAIN_FLOPS_CPU = 2.5e12
# Epochs a proxy typically trains before early stopping (measured: best epoch 2, then patience 2).
TYPICAL_EPOCHS = 4
TARGET_MAX_D_MODEL = 8192  # beyond this width the scale-up adds depth instead
LADDER_MIN_COST_LEVEL = 0.25  # proxies use at least a quarter of their rung's budget
FILL_LOW = 0.95  # a scaled-up config uses at least this share of the FLOPs budget


def training_flops(flops: float, samples: int) -> float:
    """What training one proxy to early stopping costs, roughly: 3 x forward x samples x epochs."""
    return 3 * flops * samples * TYPICAL_EPOCHS


def ladder_rungs(target: float, plan: PlanConfig, bottom: float, available: int) -> list[tuple[float, int]]:
    """(FLOPs budget, distinct samples) per rung, ascending: budgets target / 4^j at or above ``bottom``,
    rung k on ``rung_samples(plan.fidelity, k, available)`` rows. ``--proxy-max-flops`` caps the top
    budget; without it the top rung must train within PROXY_TRAIN_FLOPS_CPU (x100 on a GPU). The
    highest affordable top wins (the shortest extrapolation), then the most rungs up to MAX_RUNGS;
    [] when no ladder of MIN_RUNGS rungs fits."""
    per_trial = PROXY_TRAIN_FLOPS_CPU * (100 if plan.gpus_per_trial > 0 else 1)
    budgets = []
    budget = target / LADDER_FACTOR
    while budget >= bottom:
        budgets.append(budget)
        budget /= LADDER_FACTOR
    budgets.reverse()  # ascending
    for top in range(len(budgets) - 1, MIN_RUNGS - 2, -1):
        if plan.proxy_max_flops is not None and budgets[top] > plan.proxy_max_flops:
            continue
        for count in range(min(MAX_RUNGS, top + 1), MIN_RUNGS - 1, -1):
            rungs = [
                (budgets[top - count + 1 + k], rung_samples(plan.fidelity, k + 1, available)) for k in range(count)
            ]
            if plan.proxy_max_flops is not None or training_flops(*rungs[-1]) <= per_trial:
                return rungs
    return []


@dataclass
class FamilyScaling:
    family: str
    points: list[dict[str, Any]]  # what the law is fitted to (scaling.json's form)
    held_out: dict[str, Any] | None = None
    trends: dict[str, float] = field(default_factory=dict)  # knob -> log-log slope
    target_config: ModelConfig | None = None
    target_flops: int | None = None
    target_params: int | None = None
    target_latency_ms: float | None = None
    target_samples: int | None = None  # the data the prediction is for
    predicted_logloss: float | None = None  # the prediction's median at (target_flops, target_samples)
    interval: tuple[float, float] | None = None  # its central 90 % interval
    prior: Prior = field(default_factory=Prior)
    prediction: Prediction | None = None
    compute_pays: dict[str, Any] | None = None  # what the budget's last 4x buys at the target data
    note: str = ""

    @property
    def at_bound(self) -> list[str]:
        """Parameters whose posterior piles up at a prior bound (the prior, not the data, sets them)."""
        return list(self.prediction.posterior.at_bound) if self.prediction else []

    @property
    def check_failed(self) -> bool:
        return bool(self.prediction and self.prediction.held_out and not self.prediction.held_out.passed)

    def to_dict(self) -> dict[str, Any]:
        posterior = self.prediction.posterior if self.prediction else None
        return {
            "family": self.family,
            "points": self.points,
            "fit": posterior.point_estimate() if posterior else None,
            "data_axis": posterior.data_axis if posterior else None,
            "held_out": self.held_out,
            "trends": self.trends,
            "target_config": self.target_config.to_dict() if self.target_config else None,
            "target_flops": self.target_flops,
            "target_params": self.target_params,
            "target_latency_ms": self.target_latency_ms,
            "target_samples": self.target_samples,
            "predicted_logloss": self.predicted_logloss,
            "interval": list(self.interval) if self.interval else None,
            "misspecification_sd": self.prediction.misspecification_sd if self.prediction else None,
            "interval_method": INTERVAL_METHOD,
            "prior": self.prior.to_dict(),
            "at_bound": self.at_bound,
            "compute_pays": self.compute_pays,
            "note": self.note,
        }


def best_per_rung(rows: list[TrialRecord], family: str) -> list[TrialRecord]:
    """The best complete search trial of ``family`` on each rung, in rung order."""
    best: dict[int, TrialRecord] = {}
    for row in rows:
        if row.family != family or not row.is_complete or not row.is_search:
            continue
        if row.rung not in best or row.val_logloss < best[row.rung].val_logloss:
            best[row.rung] = row
    return [best[r] for r in sorted(best)]


def repeats_of(rows: list[TrialRecord], source: TrialRecord, role: TrialRole) -> list[TrialRecord]:
    """Complete measurements of ``role`` that repeat ``source``'s architecture on its rung."""
    return [
        r
        for r in rows
        if r.role is role
        and r.is_complete
        and r.rung == source.rung
        and (r.family, r.knobs) == (source.family, source.knobs)
    ]


def replicate_noise(rows: list[TrialRecord]) -> tuple[float, int]:
    """The seed replicates' pooled sum of squared deviations and its degrees of freedom. A group is one
    architecture on one rung's rows: its search trial and its seed repeats, one value per seed (a
    search that proposed the architecture twice trained it once); groups without a repeat say nothing."""
    groups: dict[tuple, dict[int | None, float]] = {}
    for r in rows:
        if r.is_complete and r.role in (TrialRole.SEARCH, TrialRole.SEED):
            key = (r.rung, r.family, tuple(sorted(r.knobs.items())), r.fidelity)
            groups.setdefault(key, {}).setdefault(r.seed, r.val_logloss)
    ss, dof = 0.0, 0
    for values in groups.values():
        if len(values) > 1:
            v = np.array(list(values.values()))
            ss += float(((v - v.mean()) ** 2).sum())
            dof += len(v) - 1
    return ss, dof


def law_points(rows: list[TrialRecord], family: str) -> list[TrialRecord]:
    """What the family's law is fitted to: its best trial per rung and that shape's data point."""
    points = []
    for best in best_per_rung(rows, family):
        points.append(best)
        points += repeats_of(rows, best, TrialRole.DATA)
    return points


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


def compute_pays(prediction: Prediction, flops: float, samples: float, steps: int = 6) -> dict[str, Any]:
    """Whether the budget's last 4x of FLOPs buys a gain the interval can see, at the target's data:
    the law's median at flops / 4^j (j = 1..steps) against the target's 90 % interval. ``smallest_flops``
    is the smallest such budget whose median is still inside that interval (indistinguishable from the
    best at this evidence)."""
    low, high = prediction.interval
    posterior = prediction.posterior
    smallest = flops
    for j in range(1, steps + 1):
        median, _ = posterior.predict(flops / LADDER_FACTOR**j, samples)
        if median > high:
            break
        smallest = flops / LADDER_FACTOR**j
    last, _ = posterior.predict(flops / LADDER_FACTOR, samples)
    return {
        "pays": bool(last > high),
        "median_at_quarter": last,
        "gain_from_last_4x": last - prediction.median,
        "smallest_flops": smallest,
        "interval": [low, high],
    }


def analyse_family(
    family: str,
    rows: list[TrialRecord],
    plan: PlanConfig,
    space: FamilySpace,
    schema: dict[str, Any],
    target_flops: float,
    target_samples: int,
    prior: Prior | None = None,
) -> FamilyScaling:
    """One family's points, law and scaled-up target, predicted at ``target_samples`` distinct rows.
    ``prior`` bounds the posterior (the floor's lower bound is the data's Bayes floor when known; the
    seed replicates' noise)."""
    best = best_per_rung(rows, family)
    points = law_points(rows, family)
    result = FamilyScaling(
        family=family,
        points=[
            {"rung": r.rung, "trial_id": r.trial_id, "role": r.role.value, "flops": r.flops, "samples": r.fidelity}
            | {"val_logloss": r.val_logloss}
            for r in points
        ],
        prior=prior or Prior(),
        target_samples=target_samples,
    )
    if len(best) < 3:
        result.note = f"no fit: {len(best)} rung(s) with a full-fidelity trial, 3 needed"
        return result
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
    arrays = [np.array([getattr(r, c) for r in points], dtype=float) for c in ("flops", "fidelity", "val_logloss")]
    prediction = predict(*arrays, result.prior, cost.flops, target_samples, seed=family_seed(plan.seed, family))
    if prediction is None:
        result.note = "no fit: fewer than 3 distinct FLOPs among the rungs' best trials"
        return result
    result.prediction = prediction
    result.held_out = prediction.held_out.to_dict() if prediction.held_out else None
    result.target_config = config
    result.target_flops, result.target_params, result.target_latency_ms = cost.flops, cost.params_dense, latency
    result.predicted_logloss, result.interval = prediction.median, prediction.interval
    result.compute_pays = compute_pays(prediction, cost.flops, target_samples)
    return result
