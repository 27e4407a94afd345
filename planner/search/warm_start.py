"""Where a ladder rung's search starts: every family's best shape from the rung below.

A ladder rung is one Optuna study over every family (TPE models the family with its knobs), so a
family the sampler finds poor early could end a rung without a trial, and without a scaling point. Each
rung therefore first tries one shape per family: the family's best complete search trial of the
nearest lower rung (a shape that was good at a quarter of the compute is the best guess at this one;
its width is solved again for this rung's budget), or, on the first rung, the middle of every knob's
range. They are proposed at the top of the rung's budget (cost level 1), where the law wants its
points. A family that already has a search trial on the rung (``--resume``) gets none.

A shape is carried as it was proposed, not as it trained: a low rung's budget shrinks a proposal's
knobs to fit (``search_spaces.cost_aware.repair``), and carrying the shrunken knobs would keep every
family at its smallest shape on every rung; the proposal is shrunk again only where the new budget
needs it. Its recorded knobs stand in when the proposal is not known (no Optuna study, a scripted run).

The points are Optuna parameters (``search_spaces.CostAwareSpace``'s names), enqueued before TPE's
own proposals. Plain Python, no Ray.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from unimixer_plan.run.trial_record import TrialRecord
from unimixer_plan.search_spaces import FamilySpace, IntRange

WARM_START_COST_LEVEL = 1.0


def middle_knobs(space: FamilySpace) -> dict[str, int]:
    """The middle of every knob: a range's midpoint (geometric when sampled log-uniformly), a list's
    middle element."""
    knobs = {}
    for knob, domain in space.knobs.items():
        if isinstance(domain, IntRange):
            middle = math.sqrt(domain.low * domain.high) if domain.log else (domain.low + domain.high) / 2
            knobs[knob] = int(min(max(round(middle), domain.low), domain.high))
        else:
            options = sorted(domain)
            knobs[knob] = int(options[len(options) // 2])
    return knobs


def best_below(rows: list[TrialRecord], family: str, rung: int) -> TrialRecord | None:
    """The family's lowest-logloss complete search trial on the nearest lower rung that has one."""
    lower = [r for r in rows if r.family == family and r.is_search and r.is_complete and 0 < r.rung < rung]
    if not lower:
        return None
    nearest = max(r.rung for r in lower)
    return min((r for r in lower if r.rung == nearest), key=lambda r: (r.val_logloss, r.flops))


def in_domain(space: FamilySpace, knob: str, value: int) -> bool:
    domain = space.knobs[knob]
    return domain.low <= value <= domain.high if isinstance(domain, IntRange) else value in domain


def warm_start_points(
    rows: list[TrialRecord],
    rung: int,
    spaces: dict[str, FamilySpace],
    proposals: Mapping[tuple[int, int], Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], ...]:
    """The Optuna parameters rung ``rung`` tries first: one per family without a search trial on it yet.
    ``proposals``: (rung, Optuna trial number) -> the parameters that trial was proposed with."""
    points = []
    for family in sorted(spaces):
        if any(r.family == family and r.is_search and r.rung == rung for r in rows):
            continue
        space = spaces[family]
        knobs = middle_knobs(space)
        source = best_below(rows, family, rung)
        if source is not None:  # a knob outside today's space (an edited space file) keeps the middle
            proposed = (proposals or {}).get((source.rung, source.optuna_trial), {})
            carried = {k: proposed.get(f"{family}/{k}", source.knobs.get(k)) for k in space.knobs}
            knobs |= {k: int(v) for k, v in carried.items() if v is not None and in_domain(space, k, int(v))}
        points.append(
            {"family": family}
            | {f"{family}/{knob}": value for knob, value in knobs.items()}
            | {"cost_level": WARM_START_COST_LEVEL}
        )
    return tuple(points)


def recorded_proposals(optuna_url: str, studies: Mapping[int, str]) -> dict[tuple[int, int], dict[str, Any]]:
    """(rung, trial number) -> proposed parameters, from the rungs' Optuna studies in ``optuna_url``."""
    import optuna  # only where a plan reads its study back

    found: dict[tuple[int, int], dict[str, Any]] = {}
    for rung, name in studies.items():
        try:
            study = optuna.load_study(study_name=name, storage=optuna_url)
        except KeyError:  # not started yet
            continue
        found |= {(rung, t.number): dict(t.params) for t in study.get_trials(deepcopy=False)}
    return found
