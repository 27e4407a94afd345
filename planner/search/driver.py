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
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
import ray
import torch
from optuna.trial import TrialState
from ray import tune
from unimixer_plan.data import CTRData
from unimixer_plan.mixers import ModelConfig, analytic_cost
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.profiling import measure_latency_ms
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.trial_record import TrialRecord, TrialRole
from unimixer_plan.search.optuna_search import OBJECTIVES, PlanSearch, model_key
from unimixer_plan.search.pareto_asha import ParetoASHA
from unimixer_plan.search.ray_session import ray_session
from unimixer_plan.search.rungs import Rung, SearchRunner, check_ray_address
from unimixer_plan.search_spaces import CostAwareSpace, FamilySpace, Limits
from unimixer_plan.training.trainer import Checkpoint, evaluate

# A trial whose worker process died (killed, out of memory, a lost node) runs again, from the start.
# Training's own failures (a non-finite loss, an error while running) are results with status failed,
# not exceptions, so what is retried is a crash or an exception that escaped training (once).
TRIAL_RETRIES = 1


def baseline_logloss(labels: torch.Tensor) -> float:
    """Logloss of predicting the base rate: the quality of a model that learned nothing."""
    p = float(labels.double().mean().clamp(1e-7, 1 - 1e-7))
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def architecture_key(model: dict[str, Any], fidelity: int, seed: int, train: dict[str, Any]) -> str:
    text = json.dumps({"model": model, "fidelity": fidelity, "seed": seed, "train": train}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def trial_config(config: dict[str, Any]) -> dict[str, Any]:
    """A Tune trial's config as the trial sees it: a fixed trial's own fields (``FixedTrial``: model,
    rung, rows, seed, role) over the rung's constants."""
    return {**config, **config.get("trial", {})}


def run_trial(config: dict[str, Any], data: CTRData, plan: dict[str, Any]) -> None:
    """The Tune trainable: one candidate, reported after every epoch (status "running", for
    the successive-halving scheduler) and once at the end (its final status). A searched trial's
    config carries its rung's rows and seed; a fixed one (a measurement) nests its own under "trial"."""
    config = trial_config(config)
    settings = PlanConfig.from_dict(plan)
    samples, seed = config["fidelity"], config["seed"]
    torch.set_num_threads(max(1, int(settings.cpus_per_trial)))
    device = "cuda" if settings.gpus_per_trial > 0 else "cpu"
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
        "model_key": model_key(config),
        "flops": cost.flops,
        "params_dense": cost.params_dense,
        "latency_ms": float("nan"),
        "distinct_samples": min(samples, len(data.train)),
    }
    if device == "cuda" and not torch.cuda.is_available():  # the ladder was sized for a GPU: no CPU fallback
        tune.report(
            {
                **base,
                "status": "failed",
                "epoch": 0,
                "val_logloss": float("nan"),
                "val_auc": float("nan"),
                "wall_time_s": 0.0,
                "error": f"--gpus-per-trial {settings.gpus_per_trial:g}: no CUDA device on this trial's node "
                f"({ray.util.get_node_ip_address()}); a GPU trial never trains on the CPU instead",
            }
        )
        return
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
    key = architecture_key(config["model"], samples, seed, plan["train"])
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
        samples,
        seed=seed,
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
        "history": [[c.epoch, c.samples_seen, c.val_logloss, c.val_auc] for c in result.history],
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
        record = TrialRecord.from_ray_result(self.next_id, trial_config(trial.config), trial.last_result, errored)
        self.folder.append_trial(record)
        if trial.last_result and trial.last_result.get("history"):
            self.folder.append_curve(record.trial_id, trial.last_result["history"])
        self.next_id += 1
        self.recorded += 1
        self.on_row(record)


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
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, data=data, plan=plan.to_dict()),
        {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial},
    )
    cpus = ray.cluster_resources().get("CPU", 1)
    constants = {"cache_dir": str(folder.cache_dir.resolve()), "rung": rung.index}
    if rung.fixed:  # measurements: exactly these trials, each trained to the end (nothing to search or stop)
        constants |= {"measure_latency": False, "feasible": True}
        param_space = constants | {"trial": tune.grid_search([asdict(t) for t in rung.fixed])}
        tune_config = tune.TuneConfig(
            num_samples=1,
            max_concurrent_trials=max(1, int(cpus // plan.cpus_per_trial)),
            reuse_actors=True,
            time_budget_s=rung.time_budget_s,
        )
    else:
        param_space, tune_config = _search_config(plan, folder, data, spaces, rung, attempt, constants, cpus)
    recorder = TrialRecorder(folder, on_row)
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune_config,
        run_config=tune.RunConfig(
            name=f"{rung.study_name}-{attempt}",
            storage_path=str((folder.path / "ray").resolve()),
            verbose=1 if plan.verbose else 0,
            callbacks=[recorder],
            failure_config=tune.FailureConfig(max_failures=TRIAL_RETRIES),
        ),
    )
    tuner.fit()
    return recorder.recorded


def _search_config(
    plan: PlanConfig,
    folder: RunFolder,
    data: CTRData,
    spaces: dict[str, FamilySpace],
    rung: Rung,
    attempt: int,
    constants: dict[str, Any],
    cpus: float,
) -> tuple[dict[str, Any], tune.TuneConfig]:
    """A searched rung: the cost-aware space through OptunaSearch, multi-objective successive halving."""
    mark_interrupted_trials_failed(folder.optuna_url, rung.study_name)
    limits = Limits(flops=rung.flops, params=plan.budget.params)
    searched = {f: spaces[f] for f in rung.families} if rung.families else spaces
    space = CostAwareSpace(searched, limits, rung.ceiling_flops, data.schema, min_cost_level=rung.min_cost_level)
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
        max_concurrent_trials=max(1, int(cpus // plan.cpus_per_trial)),
        reuse_actors=True,
        time_budget_s=rung.time_budget_s,
    )
    return param_space, tune_config


def check_plan_ray_address(plan: PlanConfig) -> None:
    check_ray_address(plan.ray_address)


# The plan's default search: Ray Tune + Optuna (``unimixer_plan.plan.run_plan`` takes any SearchRunner).
RAY_SEARCH = SearchRunner(check=check_plan_ray_address, session=ray_session, run_rung=run_search)
