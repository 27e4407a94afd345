"""Multi-objective, budget-constrained search: Ray Tune drives trials, Optuna (TPE) proposes.

- The space is cost-aware (``search_spaces.CostAwareSpace``): every proposal fits the
  analytic budgets, and one that cannot is flagged and never trained.
- Objectives: validation logloss and FLOPs, both minimised. Budgets are Optuna constraints.
- Multi-objective successive halving (``unimixer_plan.search.pareto_asha``) stops trials that are
  dominated on (logloss, FLOPs) at an early rung; a stopped trial reaches Optuna as
  PRUNED (not as a COMPLETE trial with a low-fidelity value) and trials.csv records the
  fidelity it reached. Only full-fidelity trials enter the Pareto set.
- Each finished trial is appended to trials.csv at once, so an interruption loses nothing
  finished; the Optuna study lives in optuna.db for --resume.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from ray import tune
from unimixer_plan.data import CTRData
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.trial_record import TrialRecord, TrialRole, utc_timestamp
from unimixer_plan.search.concurrency import LiveCapacity
from unimixer_plan.search.optuna_search import OBJECTIVES, PlanSearch
from unimixer_plan.search.pareto_asha import ParetoASHA
from unimixer_plan.search.ray_session import ray_session
from unimixer_plan.search.result_cache import result_cache
from unimixer_plan.search.rungs import Rung, SearchRunner, check_ray_address, trial_rows
from unimixer_plan.search.trainable import CACHED_FIELDS, run_trial, trial_config
from unimixer_plan.search_spaces import CostAwareSpace, FamilySpace, Limits

# A trial whose worker process died (killed, out of memory, a lost node) runs again, from the start.
# Training's own failures (a non-finite loss, an error while running) are results with status failed,
# not exceptions, so what is retried is a crash or an exception that escaped training (once).
TRIAL_RETRIES = 1
DIRECT_STARTUP_TRIALS = 10  # Optuna's default random start
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)\b")  # "ModuleNotFoundError: No module ..."


class TrialRecorder(tune.Callback):
    """Appends one trials.csv row as each trial ends (finished, stopped by ASHA, failed)."""

    def __init__(self, folder: RunFolder, on_row: Callable[[TrialRecord], None]) -> None:
        self.folder = folder
        self.on_row = on_row
        self.next_id = len(folder.load_trials())  # trial ids are unique across rungs and resumes
        self.recorded = 0
        self.started: dict[str, str] = {}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.started.setdefault(trial.trial_id, utc_timestamp())  # a retried trial keeps its first start

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, errored=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, errored=True)

    def _record(self, trial: Any, errored: bool) -> None:
        result = trial.last_result or {}
        raised = raised_error_text(trial) if errored else None
        record = TrialRecord.from_ray_result(self.next_id, trial_config(trial.config), result, errored, raised)
        record = replace(record, started=self.started.pop(trial.trial_id, None), ended=utc_timestamp())
        if result.get("status") == "ok" and not result.get("cached") and result.get("result_key"):
            # kept on the driver's disk for --resume (the trial, maybe on another node, never writes it)
            self.folder.save_cached_result(result["result_key"], {k: result[k] for k in CACHED_FIELDS})
        self.folder.append_trial(record)
        if trial.last_result and trial.last_result.get("history"):
            self.folder.append_curve(record.trial_id, trial.last_result["history"])
        self.next_id += 1
        self.recorded += 1
        self.on_row(record)


def raised_error_text(trial: Any) -> str | None:
    """The exception an errored trial raised, from the traceback Ray stored for it: its last
    ``SomeError: message`` line (``ModuleNotFoundError: No module named ...``), the real cause where the
    logs would hide it; else the traceback's last line."""
    try:  # the driver's local copy is written before the callbacks run; the storage copy may lag
        local = trial.error_file
        text = Path(local).read_text() if local and Path(local).is_file() else trial.get_error()
    except Exception:  # any failure to read it back: the record keeps the generic text
        return None
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    candidates = [line for line in lines if EXCEPTION_LINE.match(line)] or lines
    return candidates[-1][:500] if candidates else None


def mark_interrupted_trials_failed(storage_url: str, study_name: str) -> None:
    """Trials left RUNNING by an interrupted run can never finish; tell Optuna so."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage_url)
    except KeyError:
        return
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def run_search(
    plan: PlanConfig,
    folder: RunFolder,
    data: CTRData,
    spaces: dict[str, FamilySpace],
    rung: Rung,
    attempt: int,
    on_row: Callable[[TrialRecord], None],
) -> int:
    """Search one rung inside an open ``ray_session``; returns how many trials it recorded
    (fewer than asked, without a time budget, means Ctrl-C stopped it)."""
    constants = {"rung": rung.index}
    if rung.fixed:  # measurements: exactly these trials, each trained to the end (nothing to search or stop)
        constants |= {"measure_latency": False, "feasible": True}
        param_space = constants | {"trial": tune.grid_search([asdict(t) for t in rung.fixed])}
        tune_config = tune.TuneConfig(
            num_samples=1,
            max_concurrent_trials=None,  # nothing is proposed: Ray starts each as resources free up
            reuse_actors=True,
            time_budget_s=rung.time_budget_s,
        )
    else:
        param_space, tune_config = _search_config(plan, folder, data, spaces, rung, attempt, constants)
    recorder = TrialRecorder(folder, on_row)
    run_config = tune.RunConfig(
        name=f"{rung.study_name}-{attempt}",
        storage_path=str((folder.path / "ray").resolve()),
        verbose=1 if plan.verbose else 0,
        callbacks=[recorder],
        failure_config=tune.FailureConfig(max_failures=TRIAL_RETRIES),
    )
    with result_cache(folder.cached_results()) as results:
        trial_data = data.for_trials(trial_rows(rung, plan.fidelity))  # only the rows its trials read
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, data=trial_data, plan=plan.to_dict(), results=results),
            {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial},
        )
        tune.Tuner(trainable, param_space=param_space, tune_config=tune_config, run_config=run_config).fit()
    return recorder.recorded


def _search_config(
    plan: PlanConfig,
    folder: RunFolder,
    data: CTRData,
    spaces: dict[str, FamilySpace],
    rung: Rung,
    attempt: int,
    constants: dict[str, Any],
) -> tuple[dict[str, Any], tune.TuneConfig]:
    """A searched rung: the cost-aware space through OptunaSearch, multi-objective successive halving."""
    mark_interrupted_trials_failed(folder.optuna_url, rung.study_name)
    limits = Limits(flops=rung.flops, params=plan.budget.params)
    searched = {f: spaces[f] for f in rung.families} if rung.families else spaces
    space = CostAwareSpace(searched, limits, rung.ceiling_flops, data.schema, min_cost_level=rung.min_cost_level)
    latency_budget = plan.budget.latency_ms if rung.measure_latency else None
    ladder = rung.index > 0
    start_up = startup_trials(rung, len(searched))
    sampler = optuna.samplers.TPESampler(
        seed=plan.seed + 1000 * attempt + rung.index,
        n_startup_trials=start_up,
        constant_liar=True,  # trials running at once: each proposal avoids the others' pending points
    )
    search = PlanSearch(
        space=space,
        metric=OBJECTIVES,
        mode=["min", "min"],
        sampler=sampler,
        storage=optuna.storages.RDBStorage(folder.optuna_url),
        study_name=rung.study_name,
        points_to_evaluate=[dict(point) for point in rung.warm_start] or None,
        latency_budget=latency_budget,
        capacity=LiveCapacity(plan.cpus_per_trial, plan.gpus_per_trial),
        # A ladder rung's TPE proposals wait for the warm starts' results (a direct search's random
        # start-up needs none).
        model_after=start_up if ladder else 0,
        balance_families=tuple(sorted(searched)) if ladder else (),
    )
    scheduler = ParetoASHA(
        time_attr="epoch",
        objectives=("val_logloss", "flops"),
        milestones=plan.halving_epochs,
        # On a ladder every family needs its own best trial per rung for its law: only a family's own
        # trials may stop it. A direct search only needs the front, across families.
        group_by_family=ladder,
    )
    samples = rung.samples if rung.samples is not None else plan.fidelity
    param_space = constants | {
        "measure_latency": latency_budget is not None,
        "fidelity": samples,
        "seed": plan.seed,
        "role": TrialRole.SEARCH.value,
    }
    tune_config = tune.TuneConfig(
        search_alg=search,
        scheduler=scheduler,
        num_samples=rung.trials,
        # PlanSearch holds the real limit, the live cluster's (LiveCapacity); this bound only lifts Tune's
        # own default for a searcher, one trial pending at a time, which starts trials one by one.
        max_concurrent_trials=rung.trials,
        reuse_actors=True,
        time_budget_s=rung.time_budget_s,
    )
    return param_space, tune_config


def startup_trials(rung: Rung, families: int) -> int:
    """Trials before TPE models the study. A ladder rung's first trials are the families' carried-over
    shapes (``search.warm_start``), not random draws: TPE models from there on. A direct search keeps
    Optuna's random start."""
    return families if rung.index > 0 else DIRECT_STARTUP_TRIALS


def check_plan_ray_address(plan: PlanConfig) -> None:
    check_ray_address(plan.ray_address)


# The plan's default search: Ray Tune + Optuna (``unimixer_plan.plan.run_plan`` takes any SearchRunner).
RAY_SEARCH = SearchRunner(check=check_plan_ray_address, session=ray_session, run_rung=run_search)
