"""What a plan asks of a search, without Ray: the rungs to search and the runner that searches them.

``unimixer_plan.plan.run_plan`` takes a :class:`SearchRunner`. The default one
(``unimixer_plan.search.driver.RAY_SEARCH``) runs Ray Tune + Optuna; tests pass a scripted
runner that appends trial rows to the run folder, so that the plan's own logic (ladder,
resume, interruption, Pareto set, choice, scale-up) runs in milliseconds without Ray.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unimixer_plan.run.trial_record import KNOB_COLUMNS as KNOB_NAMES
from unimixer_plan.search.ray_address import check_ray_address, ray_address_endpoint
from unimixer_plan.search_spaces.cost_aware import MIN_COST_LEVEL

if TYPE_CHECKING:
    from unimixer_plan.data import CTRData
    from unimixer_plan.plan_config import PlanConfig
    from unimixer_plan.run.folder import RunFolder
    from unimixer_plan.run.trial_record import TrialRecord
    from unimixer_plan.search_spaces import FamilySpace


@dataclass(frozen=True)
class FixedTrial:
    """A trial that is not searched: a rung's best shape trained again on other rows or with another
    seed (``TrialRecord.role`` data or seed), to measure the scaling law's data axis and the noise."""

    model: dict[str, Any]  # ModelConfig.to_dict()
    rung: int  # the rung of the trial it repeats
    fidelity: int  # distinct training rows (the name a searched trial's config and TrialRecord use)
    seed: int
    role: str  # TrialRole value

    def matches(self, record: TrialRecord) -> bool:
        """Whether ``record`` is this trial (already run: resume skips it)."""
        knobs = {k: self.model.get(k) for k in ("family", *KNOB_NAMES)}
        return (
            record.role == self.role
            and record.rung == self.rung
            and record.seed == self.seed
            and record.fidelity == self.fidelity
            and {"family": record.family, **record.knobs} == knobs
        )


@dataclass(frozen=True)
class Rung:
    """One search: its FLOPs budget (the plan's own, or a proxy's), the distinct training rows of its
    trials, its study and trial count. A rung with ``fixed`` trials searches nothing: it trains them."""

    index: int
    flops: float | None
    ceiling_flops: float
    study_name: str
    trials: int
    measure_latency: bool
    families: tuple[str, ...] = ()  # empty: every family of the space
    min_cost_level: float = MIN_COST_LEVEL
    time_budget_s: float | None = None
    samples: int | None = None  # None: the plan's fidelity
    fixed: tuple[FixedTrial, ...] = ()
    # Optuna parameters tried before the sampler's own (``unimixer_plan.search.warm_start``): on a ladder
    # rung, every family's best shape from the rung below.
    warm_start: tuple[dict[str, Any], ...] = ()


def trial_rows(rung: Rung, fidelity: int) -> int:
    """The training rows a rung's trials need at most (each trains on a prefix of the training split):
    its own rows, or the largest of its fixed trials'; ``fidelity`` for a rung without its own."""
    if rung.fixed:
        return max(t.fidelity for t in rung.fixed)
    return rung.samples if rung.samples is not None else fidelity


# run_rung(plan, folder, data, spaces, rung, attempt, on_row) -> trials recorded in folder's trials.csv;
# on_row is called with each record as it is appended.
SearchRung = Callable[
    ["PlanConfig", "RunFolder", "CTRData", "dict[str, FamilySpace]", Rung, int, Callable[["TrialRecord"], None]],
    int,
]


@dataclass(frozen=True)
class SearchRunner:
    """How a plan searches its rungs.

    check:    before anything is loaded or written, fail fast on settings the runner cannot use
    session:  one context around all rungs of a plan (one Ray connection)
    run_rung: search one rung inside the session; returns how many trials it appended to trials.csv
              (fewer than asked, without a time budget, means Ctrl-C stopped it)
    """

    check: Callable[[PlanConfig], None]
    session: Callable[[PlanConfig], AbstractContextManager[Any]]
    run_rung: SearchRung


__all__ = [
    "FixedTrial",
    "Rung",
    "SearchRung",
    "SearchRunner",
    "check_ray_address",
    "ray_address_endpoint",
    "trial_rows",
]
