"""A scripted search for the plan's seam (``run_plan(..., search=...)``): no Ray, no training.

Each trial of a rung comes from a script, ``script(rung, k) -> Scripted``: the family, its shape knobs
and a cost level; the fake solves d_model with the real cost model (as the cost-aware space does) and
appends a trial record with the scripted quality, fidelity and status, exactly as the Ray driver's
recorder would. The plan's own logic (ladder, resume, interruption, Pareto set, choice, scale-up)
then runs for real on those rows.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace

from unimixer_plan.data import load_data
from unimixer_plan.mixers import ModelConfig, analytic_cost
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.summary import Certificate
from unimixer_plan.run.trial_record import KNOB_COLUMNS, TrialRecord, TrialRole, TrialStatus
from unimixer_plan.search.rungs import FixedTrial, Rung, SearchRunner, check_ray_address
from unimixer_plan.search_spaces import Limits, solve_width
from unimixer_plan.search_spaces.cost_aware import family_knobs, narrowest_config, repair


@dataclass(frozen=True)
class Scripted:
    family: str
    knobs: dict[str, int]  # every knob of the family's space except d_model (shrunk if the rung needs it)
    level: float  # share of the rung's FLOPs ceiling the width is solved for
    loss: float | Callable[[int], float]  # validation logloss, or a function of the trial's FLOPs
    status: TrialStatus = TrialStatus.OK
    fidelity_share: float = 1.0  # 1/3 with status "stopped": stopped at the second ASHA milestone
    latency_ms: float = math.nan
    within_params: bool = True  # False: the width ignores a params budget (a row the choice must refuse)


def data_penalty(trial: FixedTrial, source_loss: float) -> float:
    """A measurement's scripted loss: its source trial's, plus 0.01 per halving of the rows, plus a
    seed's small offset (so that replicates have a spread)."""
    source_samples = trial.fidelity * (4 if trial.role == TrialRole.DATA else 1)
    return source_loss + 0.01 * math.log2(source_samples / trial.fidelity) + 0.0005 * (trial.seed % 3 - 1)


@dataclass
class ScriptedSearch:
    script: Callable[[Rung, int], Scripted]
    interrupt_after: int | None = None  # like Ctrl-C: stop after this many rows in this run
    measure: Callable[[FixedTrial, float], float] = data_penalty  # a measurement's loss from its source's
    rungs_run: list[Rung] = field(default_factory=list)
    recorded: int = 0

    @property
    def runner(self) -> SearchRunner:
        return SearchRunner(
            check=lambda plan: check_ray_address(plan.ray_address),
            session=lambda plan: nullcontext(),
            run_rung=self.run_rung,
        )

    def run_rung(self, plan, folder: RunFolder, data, spaces, rung: Rung, attempt: int, on_row) -> int:
        self.rungs_run.append(rung)
        if rung.fixed:
            return self.run_fixed(folder, rung, on_row)
        schema = data.schema
        rows = folder.load_trials()
        already = sum(
            r.is_search and r.rung == rung.index and (not rung.families or r.family in rung.families) for r in rows
        )
        recorded = 0
        for k in range(already, already + rung.trials):
            if self.interrupt_after is not None and self.recorded >= self.interrupt_after:
                return recorded
            step = self.script(rung, k)
            space = spaces[step.family]
            budgets = Limits(flops=rung.flops, params=plan.budget.params)
            # as the cost-aware space does: shrink a shape that cannot fit the rung at any width
            knobs = repair(space, family_knobs(space, {"embed_dim": 16, **step.knobs}), budgets, schema)
            limits = Limits(
                flops=step.level * rung.ceiling_flops, params=plan.budget.params if step.within_params else None
            )
            config = solve_width(space, knobs, limits, schema) or narrowest_config(space, knobs, schema)
            assert config is not None, (rung, step)
            cost = analytic_cost(config)
            loss = step.loss(cost.flops) if callable(step.loss) else step.loss
            status = TrialStatus(step.status)
            record = TrialRecord(
                trial_id=len(rows) + recorded,
                rung=rung.index,
                optuna_trial=k,
                family=config.family,
                **{knob: getattr(config, knob) for knob in KNOB_COLUMNS},
                fidelity=rung.samples or plan.fidelity,  # distinct rows: a stopped trial saw them too
                seed=plan.seed,
                epochs=max(1, round(6 * step.fidelity_share)),
                best_epoch=max(1, round(4 * step.fidelity_share)),
                status=status,
                val_logloss=math.nan if status is TrialStatus.INFEASIBLE else loss,
                val_auc=0.7,
                flops=cost.flops,
                params_dense=cost.params_dense,
                latency_ms=step.latency_ms,
                wall_time_s=0.01,
                error="scripted failure" if status is TrialStatus.FAILED else None,
            )
            folder.append_trial(record)
            on_row(record)
            recorded += 1
            self.recorded += 1
        return recorded

    def run_fixed(self, folder: RunFolder, rung: Rung, on_row) -> int:
        """Measurements: each a copy of its source search trial with the scripted loss of ``measure``."""
        rows = folder.load_trials()
        recorded = 0
        for trial in rung.fixed:
            if self.interrupt_after is not None and self.recorded >= self.interrupt_after:
                return recorded
            model = ModelConfig.from_dict(trial.model)
            source = next(
                r
                for r in rows
                if r.is_search
                and r.rung == trial.rung
                and (r.family, r.knobs) == (model.family, {k: getattr(model, k) for k in KNOB_COLUMNS})
            )
            record = replace(
                source,
                trial_id=len(rows) + recorded,
                role=TrialRole(trial.role),
                optuna_trial=None,
                fidelity=trial.fidelity,
                seed=trial.seed,
                val_logloss=self.measure(trial, source.val_logloss),
            )
            folder.append_trial(record)
            on_row(record)
            recorded += 1
            self.recorded += 1
        return recorded


def fast_certify(config, plan) -> Certificate:
    """The plan's certify without fvcore and a latency benchmark: the analytic cost (equal to fvcore's
    by test_cost) and a fixed latency, so that choice tests run in milliseconds."""
    cost = analytic_cost(config)
    return Certificate(
        flops_fvcore=cost.flops,
        flops_analytic=cost.flops,
        step_flops=0,
        params_dense=cost.params_dense,
        params_embedding=cost.params_embedding,
        latency_ms=0.5,
        batch_size=plan.budget.batch_size,
        device=plan.budget.device,
        train_flops_per_batch=cost.train_flops_per_batch(plan.budget.batch_size),
    )


@functools.cache
def cached_data(spec, train_rows: int):
    """load_data once per spec: the synthetic generator calibrates for about a second, and the scripted
    plans only read the schema from it."""
    return load_data(spec, train_rows=train_rows)
