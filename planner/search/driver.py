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

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import ray
import torch
from optuna.trial import TrialState
from ray import tune
from ray.tune.search.optuna import OptunaSearch
from unimixer_plan.data import CTRData
from unimixer_plan.mixers import ModelConfig, analytic_cost
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.profiling import measure_latency_ms
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.trial_record import TrialRecord
from unimixer_plan.search.pareto_asha import ParetoASHA
from unimixer_plan.search.rungs import Rung, SearchRunner, check_ray_address
from unimixer_plan.search_spaces import CostAwareSpace, FamilySpace, Limits
from unimixer_plan.training.trainer import Checkpoint, evaluate

OBJECTIVES = ["val_logloss", "flops"]


def baseline_logloss(labels: torch.Tensor) -> float:
    """Logloss of predicting the base rate: the quality of a model that learned nothing."""
    p = float(labels.double().mean().clamp(1e-7, 1 - 1e-7))
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


class PlanSearch(OptunaSearch):
    """OptunaSearch that tells Optuna what really happened to a trial.

    Stopped by successive halving -> PRUNED; failed -> FAIL; not trained because a measured
    budget (latency) is broken -> COMPLETE with the base-rate logloss and a violated
    constraint, so that constrained TPE learns to avoid that region.

    A proposal that resolves to an architecture this search already trained to completion
    does not spend a trial: Optuna is told the known result and asked again (TPE repeats
    itself in small discrete spaces, and the cost-aware width solve maps many proposals to
    one architecture).
    """

    def __init__(self, *args: Any, latency_budget: float | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latency_budget = latency_budget
        self.trained: dict[str, dict[str, Any]] = {}  # model config (JSON) -> its final result
        self.duplicates = 0

    def suggest(self, trial_id: str) -> dict | None:
        for _ in range(MAX_DUPLICATE_DRAWS):
            config = super().suggest(trial_id)
            known = self.trained.get(_model_key(config)) if config else None
            if known is None:
                return config
            ot_trial = self._ot_trials.pop(trial_id)
            self._tell(ot_trial, known, error=False)
            self.duplicates += 1
        return config  # still a repeat: let it run; the trainable answers it from its cache

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        result = result or {}
        self._tell(self._ot_trials[trial_id], result, error)
        if not error and result.get("status") == "ok" and result.get("model_key"):
            self.trained[result["model_key"]] = result
        self._completed_trials.add(trial_id)

    def _tell(self, ot_trial: Any, result: dict[str, Any], error: bool) -> None:
        latency = result.get("latency_ms")
        status = result.get("status")
        try:
            if self.latency_budget is not None and latency is not None and math.isfinite(latency):
                ot_trial.set_constraint("latency", latency - self.latency_budget)
            else:
                ot_trial.set_constraint("latency", -1.0)
            if (
                error
                or status in (None, "failed")
                or (status == "infeasible" and not math.isfinite(result.get("flops", math.nan)))
            ):
                self._ot_study.tell(ot_trial, state=TrialState.FAIL)
            elif status == "infeasible":
                self._ot_study.tell(ot_trial, [result["val_logloss"], result["flops"]])
            elif status == "running":  # its last report was an epoch's: the scheduler stopped it
                self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
            else:
                self._ot_study.tell(ot_trial, [result[m] for m in OBJECTIVES])
        except (ValueError, RuntimeError) as err:  # a trial Optuna already finished (resume edge cases)
            logging.getLogger(__name__).debug("optuna tell failed: %s", err)


MAX_DUPLICATE_DRAWS = 20


def _model_key(config: dict[str, Any]) -> str | None:
    model = config.get("model")
    return hashlib.sha1(json.dumps(model, sort_keys=True).encode()).hexdigest()[:16] if model else None


def architecture_key(model: dict[str, Any], fidelity: int, seed: int, train: dict[str, Any]) -> str:
    text = json.dumps({"model": model, "fidelity": fidelity, "seed": seed, "train": train}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def run_trial(config: dict[str, Any], data: CTRData, plan: dict[str, Any]) -> None:
    """The Tune trainable: one candidate, reported after every epoch (status "running", for
    the successive-halving scheduler) and once at the end (its final status)."""
    settings = PlanConfig.from_dict(plan)
    torch.set_num_threads(max(1, int(settings.cpus_per_trial)))
    device = "cuda" if settings.gpus_per_trial > 0 and torch.cuda.is_available() else "cpu"
    if config["model"] is None:  # no valid width for the sampled knobs
        tune.report(
            {
                "status": "infeasible",
                "epoch": 0,
                "flops": float("nan"),
                "params_dense": float("nan"),
                "latency_ms": float("nan"),
                "val_logloss": float("nan"),
                "val_auc": float("nan"),
                "wall_time_s": 0.0,
                "error": "no valid d_model for these knobs",
            }
        )
        return
    model = ModelConfig.from_dict(config["model"])
    cost = analytic_cost(model)
    base = {
        "model_key": _model_key(config),
        "flops": cost.flops,
        "params_dense": cost.params_dense,
        "latency_ms": float("nan"),
        "distinct_samples": min(settings.fidelity, len(data.train)),
    }
    budget = settings.budget
    if config["measure_latency"]:
        from unimixer_plan.mixers import build_model

        base["latency_ms"] = measure_latency_ms(build_model(model), budget.batch_size, torch.device(device), 0.2)
    over_latency = config["measure_latency"] and base["latency_ms"] > budget.latency_ms
    if not config["feasible"] or over_latency:
        tune.report(
            {
                **base,
                "status": "infeasible",
                "epoch": 0,
                "val_logloss": baseline_logloss(data.val.labels),
                "val_auc": float("nan"),
                "wall_time_s": 0.0,
                "error": None,
            }
        )
        return
    key = architecture_key(config["model"], settings.fidelity, settings.seed, plan["train"])
    cache = Path(config["cache_dir"]) / f"{key}.json"
    if cache.exists():  # the same architecture already trained to convergence in this run: reuse it
        tune.report({**base, **json.loads(cache.read_text()), "cached": True})
        return

    def report_epoch(checkpoint: Checkpoint) -> None:
        tune.report(
            {
                **base,
                "status": "running",
                "epoch": checkpoint.epoch,
                "samples_seen": checkpoint.samples_seen,
                "val_logloss": checkpoint.val_logloss,
                "val_auc": checkpoint.val_auc,
                "wall_time_s": float("nan"),
                "error": None,
            }
        )

    result = evaluate(
        model,
        data,
        settings.fidelity,
        seed=settings.seed,
        settings=settings.train,
        reporter=report_epoch,
        device=device,
    )
    final = {
        "status": result.status,
        "epoch": result.epochs,
        "distinct_samples": result.distinct_samples,
        "samples_seen": result.samples_seen,
        "best_epoch": result.best_epoch,
        "stop_reason": result.stop_reason,
        "learning_rate": result.learning_rate,
        "batch_size": result.batch_size,
        "val_logloss": result.val_logloss,
        "val_auc": result.val_auc,
        "wall_time_s": result.wall_time_s,
        "error": result.error,
    }
    if result.ok:
        cache.write_text(json.dumps(final))
    tune.report({**base, **final})


class TrialRecorder(tune.Callback):
    """Appends one trials.csv row as each trial ends (finished, stopped by ASHA, failed)."""

    def __init__(self, folder: RunFolder, on_row: Callable[[TrialRecord], None]) -> None:
        self.folder = folder
        self.on_row = on_row
        self.next_id = len(folder.load_trials())  # trial ids are unique across rungs and resumes
        self.recorded = 0

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, errored=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, errored=True)

    def _record(self, trial: Any, errored: bool) -> None:
        record = TrialRecord.from_ray_result(self.next_id, trial.config, trial.last_result, errored)
        self.folder.append_trial(record)
        self.next_id += 1
        self.recorded += 1
        self.on_row(record)


@dataclass
class RayRuntime:
    """A Ray connection this plan started (and so must stop), or joined."""

    started_here: bool
    temp_dir: str | None

    def shutdown(self) -> None:
        ray.shutdown()
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_ray(address: str | None, verbose: bool) -> RayRuntime:
    level = logging.INFO if verbose else logging.ERROR
    if ray.is_initialized():
        return RayRuntime(started_here=False, temp_dir=None)
    if address:
        ray.init(address=address, log_to_driver=verbose, logging_level=level, configure_logging=True)
        return RayRuntime(started_here=False, temp_dir=None)
    # Short path: Ray's Unix sockets must fit in 107 characters.
    temp_dir = tempfile.mkdtemp(prefix="ump-ray-", dir="/tmp" if Path("/tmp").is_dir() else None)
    ray.init(
        num_cpus=os.cpu_count() or 1,
        include_dashboard=False,
        log_to_driver=verbose,
        logging_level=level,
        _temp_dir=temp_dir,
    )
    return RayRuntime(started_here=True, temp_dir=temp_dir)


def mark_interrupted_trials_failed(storage_url: str, study_name: str) -> None:
    """Trials left RUNNING by an interrupted run can never finish; tell Optuna so."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage_url)
    except KeyError:
        return
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


@contextmanager
def ray_session(plan: PlanConfig) -> Iterator[None]:
    """One Ray connection for a whole plan (all rungs); stopped only if this plan started it."""
    optuna.logging.set_verbosity(optuna.logging.INFO if plan.verbose else optuna.logging.WARNING)
    runtime = start_ray(plan.ray_address, plan.verbose)
    try:
        yield
    finally:
        if runtime.started_here:
            runtime.shutdown()


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
    mark_interrupted_trials_failed(folder.optuna_url, rung.study_name)
    schema = data.schema
    limits = Limits(flops=rung.flops, params=plan.budget.params)
    searched = {f: spaces[f] for f in rung.families} if rung.families else spaces
    space = CostAwareSpace(searched, limits, rung.ceiling_flops, schema, min_cost_level=rung.min_cost_level)
    latency_budget = plan.budget.latency_ms if rung.measure_latency else None
    search = PlanSearch(
        space=space,
        metric=OBJECTIVES,
        mode=["min", "min"],
        sampler=optuna.samplers.TPESampler(seed=plan.seed + 1000 * attempt + rung.index),
        storage=optuna.storages.RDBStorage(folder.optuna_url),
        study_name=rung.study_name,
        latency_budget=latency_budget,
    )
    scheduler = ParetoASHA(time_attr="epoch", objectives=("val_logloss", "flops"), milestones=plan.halving_epochs)
    cpus = ray.cluster_resources().get("CPU", 1)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, data=data, plan=plan.to_dict()),
        {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial},
    )
    constants = {
        "cache_dir": str(folder.cache_dir.resolve()),
        "rung": rung.index,
        "measure_latency": latency_budget is not None,
    }
    recorder = TrialRecorder(folder, on_row)
    tuner = tune.Tuner(
        trainable,
        param_space=constants,
        tune_config=tune.TuneConfig(
            search_alg=search,
            scheduler=scheduler,
            num_samples=rung.trials,
            max_concurrent_trials=max(1, int(cpus // plan.cpus_per_trial)),
            reuse_actors=True,
            time_budget_s=rung.time_budget_s,
        ),
        run_config=tune.RunConfig(
            name=f"{rung.study_name}-{attempt}",
            storage_path=str((folder.path / "ray").resolve()),
            verbose=1 if plan.verbose else 0,
            callbacks=[recorder],
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    tuner.fit()
    return recorder.recorded


def check_plan_ray_address(plan: PlanConfig) -> None:
    check_ray_address(plan.ray_address)


# The plan's default search: Ray Tune + Optuna (``unimixer_plan.plan.run_plan`` takes any SearchRunner).
RAY_SEARCH = SearchRunner(check=check_plan_ray_address, session=ray_session, run_rung=run_search)
