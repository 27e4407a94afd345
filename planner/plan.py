"""Run a plan end to end: check budgets, search, measure, Pareto set, choose, certify, write the run folder.

A budget that trains here is searched directly (``finish_plan``); a larger one goes through a proxy
ladder (``unimixer_plan.ladder_outcome``): rungs of growing compute and data, each searched, then the
measurements the scaling law needs (``unimixer_plan.measurements``), then the choice at the target.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from unimixer_plan import outcome
from unimixer_plan.data import CTRData, load_data
from unimixer_plan.ladder_outcome import finish_ladder
from unimixer_plan.measurements import measurement_rung, measurement_trials, missing_measurements
from unimixer_plan.mixers import PlanError, analytic_cost, build_model, save_config
from unimixer_plan.outcome import PlanOutcome
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.profiling import measure_latency_ms, resolve_device
from unimixer_plan.retrain_on_test import with_final_check
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.records import export_metadata
from unimixer_plan.run.summary import Chosen
from unimixer_plan.run.trial_record import TrialRecord
from unimixer_plan.run.versions import package_versions
from unimixer_plan.scaling.design import DATA_GROWTH, SEED_REPLICATES
from unimixer_plan.scaling.ladder import (
    LADDER_MIN_COST_LEVEL,
    MAX_RUNGS,
    MIN_RUNGS,
    PROXY_TRAIN_FLOPS_CPU,
    TYPICAL_EPOCHS,
    ladder_rungs,
)
from unimixer_plan.search.rungs import Rung, SearchRunner, trial_rows
from unimixer_plan.search.warm_start import recorded_proposals, warm_start_points
from unimixer_plan.search_spaces import FamilySpace, load_spaces, smallest_config
from unimixer_plan.training.baselines import train_baselines

# Without a FLOPs budget, direct search stops at this size (it must train on this machine).
DIRECT_SEARCH_MAX_FLOPS = 1e8

__all__ = ["PlanOutcome", "run_plan"]


def default_run_dir(base: str = "runs") -> str:
    return str(Path(base) / datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))


def plan_spaces(plan: PlanConfig) -> dict[str, FamilySpace]:
    spaces = load_spaces(plan.space_path)
    if plan.families:
        missing = [f for f in plan.families if f not in spaces]
        if missing:
            raise PlanError(f"--families {missing[0]!r}: not in the search space file ({', '.join(sorted(spaces))})")
        spaces = {f: spaces[f] for f in plan.families}
    if plan.embed_dim is not None:  # --embed-dim fixes the knob the space would search
        spaces = {f: replace(s, knobs={**s.knobs, "embed_dim": (plan.embed_dim,)}) for f, s in spaces.items()}
    return spaces


def check_budgets_reachable(plan: PlanConfig, spaces: dict[str, FamilySpace], schema: dict[str, Any]) -> None:
    """Exit early, before anything trains, when even the cheapest configuration breaks a budget."""
    cheapest = smallest_config(spaces, schema)
    cost = analytic_cost(cheapest)
    shape = f"{cheapest.family}, n_tokens={cheapest.n_tokens}, d_model={cheapest.d_model}, depth={cheapest.depth}"
    if plan.budget.flops is not None and cost.flops > plan.budget.flops:
        raise PlanError(
            f"--flops {plan.budget.flops:g}: no configuration fits; the smallest possible costs "
            f"{cost.flops:,} FLOPs/sample ({shape})"
        )
    if plan.budget.params is not None and cost.params_dense > plan.budget.params:
        raise PlanError(
            f"--params {plan.budget.params:g}: no configuration fits; the smallest possible has "
            f"{cost.params_dense:,} dense parameters ({shape})"
        )
    if plan.budget.latency_ms is not None:
        device = resolve_device(plan.budget.device)
        latency = measure_latency_ms(build_model(cheapest), plan.budget.batch_size, device, 0.2)
        if latency > plan.budget.latency_ms:
            raise PlanError(
                f"--latency-ms {plan.budget.latency_ms:g}: no configuration fits; the smallest possible takes "
                f"{latency:.3f} ms at batch {plan.budget.batch_size} on {device} ({shape})"
            )


def run_plan(
    plan: PlanConfig,
    resume: bool = False,
    on_row=None,
    on_start=None,
    search: SearchRunner | None = None,
    on_check=None,
) -> PlanOutcome:
    """Search every rung still missing trials, measure what the ladder's law needs, then choose
    (directly or at the ladder's target), then re-train the choice and the runner-up for the test split
    (``unimixer_plan.retrain_on_test``; ``on_check(trained, total)`` follows it).

    ``search`` runs the rungs; the default is Ray Tune + Optuna. Tests pass a scripted runner.
    """
    if search is None:
        from unimixer_plan.search.driver import RAY_SEARCH  # Ray is imported only when a search runs

        search = RAY_SEARCH
    search.check(plan)  # before anything is loaded or written: a wrong --ray-address fails in seconds
    folder = RunFolder(Path(plan.out))
    spaces = plan_spaces(plan)
    data, rungs = plan_data_and_rungs(plan, spaces)
    schema = data.schema
    if not resume:
        if folder.plan_file.exists():
            raise PlanError(f"--out {folder.path}: already holds a plan; use --resume {folder.path} or a new folder")
        folder.create(plan, package_versions())
    else:
        folder.drop_torn_rows()  # a row half-written when the last run was killed: its trial runs again
    baselines = folder.load_baselines()
    if baselines is None:  # trained once per plan, before the search, on the top rung's rows; kept on resume
        top_samples = max(r.samples for r in rungs)
        baselines = train_baselines(data, top_samples, plan.seed, plan.train, plan.embed_dim)
        folder.write_baselines(baselines)
    done = folder.load_trials()
    ladder = len(rungs) > 1
    if on_start is not None:
        on_start(data, len(done), sum(r.trials for r in rungs) + planned_measurements(rungs, spaces), rungs)
    pending = [
        (r, r.trials - sum(record.is_search and study_of(record, rungs) == r.study_name for record in done))
        for r in rungs
    ]
    interrupted = False
    attempt = len(list((folder.path / "ray").glob("*"))) if (folder.path / "ray").is_dir() else 0
    deadline = time.monotonic() + plan.time_budget_min * 60 if plan.time_budget_min else None
    record = on_row or (lambda row: None)
    top = max(r.index for r in rungs)
    searching = any(missing > 0 for _, missing in pending)
    todo = missing_measurements(done, plan, list(spaces), top, schema) if ladder and not searching else ()
    if searching or todo:
        with search.session(plan):
            for position, (rung, missing) in enumerate(pending):
                if missing <= 0:
                    continue
                left = None if deadline is None else max(1.0, (deadline - time.monotonic()) / (len(pending) - position))
                rung = replace(rung, trials=missing, time_budget_s=left)
                if ladder:  # from the rungs below, searched just before
                    below = {r.index: r.study_name for r in rungs if r.index < rung.index}
                    proposed = recorded_proposals(folder.optuna_url, below) if folder.optuna_file.exists() else {}
                    points = warm_start_points(folder.load_trials(), rung.index, spaces, proposed)
                    rung = replace(rung, warm_start=points)
                folder.record_trial_rows(rung.study_name, data.trial_rows_record(trial_rows(rung, plan.fidelity)))
                if search.run_rung(plan, folder, data, spaces, rung, attempt, record) < missing and left is None:
                    interrupted = True  # Ctrl-C: Tune stopped this rung; stop the plan
                    break
            if ladder and not interrupted:
                todo = missing_measurements(folder.load_trials(), plan, list(spaces), top, schema)
                left = None if deadline is None else max(1.0, deadline - time.monotonic())
                if todo:
                    rung = replace(measurement_rung(top + 1, todo), time_budget_s=left)
                    folder.record_trial_rows(rung.study_name, data.trial_rows_record(trial_rows(rung, plan.fidelity)))
                    recorded = search.run_rung(plan, folder, data, spaces, rung, attempt, record)
                    interrupted = recorded < len(todo) and left is None
    if interrupted and ladder:
        # No scale-up from a partial ladder; --resume finishes it.
        rows = folder.load_trials()
        result = PlanOutcome(folder, rows, replace(outcome.base_summary(plan, folder, data, rows, 0), mode="ladder"))
    elif not ladder:
        result = finish_plan(plan, folder, data, schema)
    else:
        result = finish_ladder(plan, folder, data, schema, spaces, rungs)
    searched = sum(r.trials for r in rungs)
    search_done = sum(r.is_search for r in result.trials) >= searched
    # The measurements follow from the searches' results: counted once those are in, estimated before.
    if not ladder:
        measurements = 0
    elif search_done:
        measurements = len(measurement_trials(result.trials, plan, list(spaces), top, schema))
    else:
        measurements = planned_measurements(rungs, spaces)
    summary = replace(
        outcome.add_baselines(result.summary, baselines),
        planned_trials=searched + measurements,
        # A time budget ends searches on purpose; fewer search rows without one means the run was interrupted.
        interrupted=interrupted or (plan.time_budget_min is None and not search_done),
    )
    folder.write_summary(summary)  # complete before the final check: a Ctrl-C during it loses nothing
    if not summary.interrupted:
        try:
            summary = with_final_check(plan, folder, data, summary, on_check or (lambda done, total: None))
        except KeyboardInterrupt:  # Ctrl-C while re-training for the test split: --resume does it again
            summary = replace(summary, interrupted=True)
        folder.write_summary(summary)
        if summary.final_check is not None:  # chosen.yaml carries the test split's numbers too
            extra = export_metadata(plan, data, summary.chosen, summary.final_check)
            save_config(summary.chosen.model, folder.chosen_file, extra=extra)
    result = replace(result, summary=summary)
    if not summary.interrupted:
        from unimixer_plan.reports import write_report

        write_report(folder.path)
    return result


def planned_measurements(rungs: list[Rung], spaces: dict[str, FamilySpace]) -> int:
    return measurement_count(len({r.index for r in rungs}), len(spaces))


def measurement_count(rungs: int, families: int) -> int:
    """The measurements a full ladder runs: per family, a data point per rung and SEED_REPLICATES seed
    replicates per rung below the top (``unimixer_plan.measurements``); fewer when a family ends a rung
    without a complete trial."""
    return families * (rungs + SEED_REPLICATES * (rungs - 1)) if rungs >= 2 else 0


def plan_data_and_rungs(plan: PlanConfig, spaces: dict[str, FamilySpace]) -> tuple[CTRData, list[Rung]]:
    """The data and the rungs, each sized by the other: a real file caps the rungs' rows; the synthetic
    default is generated as long as the top rung needs."""
    data: CTRData = load_data(plan.data, train_rows=plan.fidelity)
    check_budgets_reachable(plan, spaces, data.schema)
    available = len(data.train) if not data.synthetic else plan.fidelity * DATA_GROWTH ** (MAX_RUNGS - 1)
    rungs = plan_rungs(plan, spaces, data.schema, available)
    needed = max(r.samples for r in rungs)
    if data.synthetic and needed > len(data.train):
        data = load_data(plan.data, train_rows=needed)
    return data, rungs


def direct_max_flops(plan: PlanConfig) -> float:
    """The largest budget searched directly: its trials must train here at the plan's fidelity."""
    if plan.proxy_max_flops is not None:
        return plan.proxy_max_flops
    per_trial = PROXY_TRAIN_FLOPS_CPU * (100 if plan.gpus_per_trial > 0 else 1)
    return per_trial / (3 * plan.fidelity * TYPICAL_EPOCHS)


def study_of(record: TrialRecord, rungs: list[Rung]) -> str:
    """The study a search trial belongs to (its rung's)."""
    for rung in rungs:
        if rung.index == record.rung and (not rung.families or record.family in rung.families):
            return rung.study_name
    return ""


def plan_rungs(plan: PlanConfig, spaces: dict[str, FamilySpace], schema: dict[str, Any], available: int) -> list[Rung]:
    """One direct search when the budget trains here; otherwise a ladder of proxy budgets and data sizes."""
    top = direct_max_flops(plan)
    target = plan.budget.flops
    samples = min(plan.fidelity, available)
    if target is None or target <= top:
        ceiling = target or min(DIRECT_SEARCH_MAX_FLOPS, top)
        return [Rung(0, target, ceiling, "plan", plan.trials, plan.budget.latency_ms is not None, samples=samples)]
    bottom = 2 * analytic_cost(smallest_config(spaces, schema)).flops
    ladder = ladder_rungs(target, plan, bottom, available)
    if len(ladder) < MIN_RUNGS:
        raise PlanError(
            f"--flops {target:g}: no proxy ladder of {MIN_RUNGS} rungs fits between the smallest model "
            f"({bottom:.3g} FLOPs/sample) and what a proxy may cost to train (from --fidelity {plan.fidelity}, data "
            "doubling per rung, or --proxy-max-flops); raise --proxy-max-flops or lower --fidelity"
        )
    # One study per rung over every family: TPE models the family with its knobs, and each rung
    # starts from every family's best shape of the rung below (``search.warm_start``), so each family
    # has a point per rung for its own law. Proxies aim at the top of their rung so that the compute
    # axis of the law is clean. --trials is the total, the measurements of the rungs' best shapes
    # included; the search trials are split over the rungs, the cheaper ones take the remainder.
    measurements = measurement_count(len(ladder), len(spaces))
    needed = len(ladder) * len(spaces)
    if plan.trials - measurements < needed:
        raise PlanError(
            f"--trials {plan.trials}: a ladder of {len(ladder)} rungs over {len(spaces)} families needs at least "
            f"{needed + measurements}: a search trial per family and rung ({needed}; each rung first tries every "
            f"family's best shape from the rung below) and {measurements} measurements of the rungs' best shapes; "
            f"use --trials {needed + measurements} or more, or fewer --families"
        )
    per_rung, extra = divmod(plan.trials - measurements, len(ladder))
    return [
        Rung(k + 1, b, b, f"rung-{k + 1}", per_rung + (k < extra), False, (), LADDER_MIN_COST_LEVEL, samples=n)
        for k, (b, n) in enumerate(ladder)
    ]


def finish_plan(plan: PlanConfig, folder: RunFolder, data: CTRData, schema: dict[str, Any]) -> PlanOutcome:
    rows = folder.load_trials()
    pareto = outcome.pareto_rows(rows, plan)
    folder.write_pareto(pareto)
    fitting = [r for r in outcome.full_fidelity_rows(rows) if plan.budget.admits(r.flops, r.params_dense, r.latency_ms)]
    chosen = min(fitting, key=lambda r: (r.val_logloss, r.flops)) if fitting else None
    summary = outcome.base_summary(plan, folder, data, rows, len(pareto))
    if chosen is not None:
        config = chosen.model_config(schema)
        measured = outcome.certify(config, plan)
        margins = plan.budget.margins(measured.flops_fvcore, measured.params_dense, measured.latency_ms)
        choice = Chosen.of_trial(chosen, config, measured, margins)
        summary = replace(summary, chosen=choice)
        save_config(config, folder.chosen_file, extra=export_metadata(plan, data, choice))
    return PlanOutcome(folder, rows, summary)
