"""Cost-aware parametrisation: sample the shape, then solve the width for a cost level.

Cost is known before training, so no trial is spent on a size that breaks a budget: a
trial samples the family, its shape knobs and a cost level (a log-uniform share of the
FLOPs ceiling), and d_model is solved as the widest value whose analytic cost fits the
level and every analytic budget. FLOPs and params grow monotonically with d_model, so a
binary search over its allowed multiples finds it in microseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from unimixer_plan.mixers import ConfigError, ModelConfig, analytic_cost
from unimixer_plan.search_spaces.spaces import D_MULTIPLE, FamilySpace, IntRange

MIN_COST_LEVEL = 1 / 64  # the cheapest share of the ceiling a trial may aim at


@dataclass(frozen=True)
class Limits:
    """Analytic ceilings a candidate must respect (None = no limit)."""

    flops: float | None = None
    params: float | None = None


def width_multiple(heads: int | None) -> int:
    return math.lcm(D_MULTIPLE, heads or 1)


def build_config(family: str, knobs: dict[str, int], d_model: int, schema: dict[str, Any]) -> ModelConfig:
    return ModelConfig(family=family, d_model=d_model, **knobs, **schema)


def family_knobs(space: FamilySpace, knobs: dict[str, int]) -> dict[str, int]:
    """Complete the sampled knobs with the family's derived ones (rankmixer: heads = T; rank <= N)."""
    knobs = dict(knobs)
    if space.family == "rankmixer":
        knobs["heads"] = knobs["n_tokens"]
    if space.family == "unimixing_lite":
        knobs["rank"] = min(knobs["rank"], knobs["n_tokens"] * knobs["heads"])
    return knobs


def fits(config: ModelConfig, limits: Limits) -> bool:
    cost = analytic_cost(config)
    return (limits.flops is None or cost.flops <= limits.flops) and (
        limits.params is None or cost.params_dense <= limits.params
    )


def solve_width(
    space: FamilySpace, knobs: dict[str, int], limits: Limits, schema: dict[str, Any]
) -> ModelConfig | None:
    """The widest valid config of these knobs within ``limits``; None if even the narrowest breaks them."""
    step = width_multiple(knobs.get("heads"))
    low = max(1, math.ceil(space.d_model.low / step))
    high = space.d_model.high // step
    if high < low:
        return None
    try:
        narrowest = build_config(space.family, knobs, low * step, schema)
    except ConfigError:
        return None
    if not fits(narrowest, limits):
        return None
    while low < high:  # invariant: low fits
        mid = (low + high + 1) // 2
        if fits(build_config(space.family, knobs, mid * step, schema), limits):
            low = mid
        else:
            high = mid - 1
    return build_config(space.family, knobs, low * step, schema)


def narrowest_config(space: FamilySpace, knobs: dict[str, int], schema: dict[str, Any]) -> ModelConfig | None:
    step = width_multiple(knobs.get("heads"))
    d_model = max(step, math.ceil(space.d_model.low / step) * step)
    if d_model > space.d_model.high:
        return None
    try:
        return build_config(space.family, knobs, d_model, schema)
    except ConfigError:
        return None


REPAIR_ORDER = ("depth", "ffn_ratio", "n_tokens", "heads", "bases", "rank", "embed_dim")


def repair(space: FamilySpace, knobs: dict[str, int], limits: Limits, schema: dict[str, Any]) -> dict[str, int]:
    """Shrink knobs one at a time (in REPAIR_ORDER, to their smallest values) until the narrowest
    width fits the budgets, so a shape that cannot fit at any width is not wasted as a trial."""
    knobs = dict(knobs)
    for knob in REPAIR_ORDER:
        narrowest = narrowest_config(space, knobs, schema)
        if narrowest is not None and fits(narrowest, limits):
            break
        if knob in space.knobs:
            knobs = family_knobs(space, {**knobs, knob: space.smallest(knob)})
    return knobs


def smallest_config(spaces: dict[str, FamilySpace], schema: dict[str, Any]) -> ModelConfig:
    """The cheapest configuration (by FLOPs) that the spaces allow."""
    candidates = []
    for space in spaces.values():
        config = narrowest_config(space, family_knobs(space, {k: space.smallest(k) for k in space.knobs}), schema)
        if config is not None:
            candidates.append(config)
    if not candidates:
        raise ConfigError("search space", sorted(spaces), "has no valid configuration at all")
    return min(candidates, key=lambda c: analytic_cost(c).flops)


class CostAwareSpace:
    """Optuna define-by-run space (a module-level class, so Ray Tune can pickle it).

    Suggests ``family``, ``<family>/<knob>`` and ``cost_level``; sets the constraints
    ``flops`` and ``params`` (<= 0 is feasible) and returns the resolved config as
    constants for the trainable: ``model`` (a ModelConfig dict), ``feasible``,
    ``trial_number``.
    """

    def __init__(
        self,
        spaces: dict[str, FamilySpace],
        limits: Limits,
        ceiling_flops: float,
        schema: dict[str, Any],
        min_cost_level: float = MIN_COST_LEVEL,
    ) -> None:
        self.spaces = spaces
        self.limits = limits
        self.ceiling_flops = ceiling_flops
        self.schema = schema
        self.min_cost_level = min_cost_level

    def sample_knobs(self, trial: Any, space: FamilySpace) -> dict[str, int]:
        knobs = {}
        for knob, domain in space.knobs.items():
            name = f"{space.family}/{knob}"
            if isinstance(domain, IntRange):
                knobs[knob] = trial.suggest_int(name, domain.low, domain.high, log=domain.log)
            else:
                knobs[knob] = trial.suggest_categorical(name, list(domain))
        return family_knobs(space, knobs)

    def __call__(self, trial: Any) -> dict[str, Any]:
        family = trial.suggest_categorical("family", sorted(self.spaces))
        space = self.spaces[family]
        knobs = self.sample_knobs(trial, space)
        level = trial.suggest_float("cost_level", self.min_cost_level, 1.0, log=True)
        target = Limits(flops=level * self.ceiling_flops, params=self.limits.params)
        knobs = repair(space, knobs, self.limits, self.schema)
        # Below the narrowest width the level cannot be met: take the narrowest, which still
        # trains if it fits the budgets themselves.
        config = solve_width(space, knobs, target, self.schema) or narrowest_config(space, knobs, self.schema)
        if config is None:  # no valid width at all for these knobs
            trial.set_constraint("flops", 1.0)
            trial.set_constraint("params", 1.0)
            return {"model": None, "feasible": False, "trial_number": trial.number}
        feasible = fits(config, self.limits)
        cost = analytic_cost(config)
        trial.set_constraint("flops", cost.flops - self.limits.flops if self.limits.flops else -1.0)
        trial.set_constraint("params", cost.params_dense - self.limits.params if self.limits.params else -1.0)
        return {"model": config.to_dict(), "feasible": feasible, "trial_number": trial.number}
