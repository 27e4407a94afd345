"""The Tune trainable: one candidate trained and reported, on whatever node Ray puts it.

Everything a trial needs comes through Ray (its config, the data and plan by ``tune.with_parameters``,
architectures already trained through the ``result_cache`` actor) and everything it produces goes
back through ``tune.report``: a trial never reads or writes the driver's disk, so a worker node that
does not share it (another machine) runs trials as the driver's own node does.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import ray
import torch
from ray import tune
from unimixer_plan.data import CTRData
from unimixer_plan.mixers import ModelConfig, analytic_cost
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.profiling import measure_latency_ms
from unimixer_plan.search.optuna_search import model_key
from unimixer_plan.search.result_cache import lookup, share
from unimixer_plan.training.trainer import Checkpoint, evaluate

# What a trained result is, for reuse: the final report less the architecture's costs (recomputed).
CACHED_FIELDS = (
    "status",
    "epoch",
    "distinct_samples",
    "samples_seen",
    "best_epoch",
    "stop_reason",
    "learning_rate",
    "batch_size",
    "history",
    "val_logloss",
    "val_auc",
    "wall_time_s",
    "error",
)


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


def node_label() -> str | None:
    """The Ray node running this trial, as trials.csv's ``node`` records it (None outside Ray)."""
    if not ray.is_initialized():
        return None
    return f"{ray.util.get_node_ip_address()}/{ray.get_runtime_context().get_node_id()[:8]}"


def best_checkpoint(best: Checkpoint | None, latest: Checkpoint, min_delta: float) -> Checkpoint:
    """What a trial reports after each epoch: the epoch whose weights early stopping would restore,
    the last one that improved on the best by more than ``min_delta`` (``TrainSettings``, as the
    trainer counts it). Successive halving judges trials on it, and a stopped trial's row keeps it
    (with that ``best_epoch``): a trial past its best at the milestone still delivers its best, and
    on the recorded grid judging the latest epoch stopped 3.9 % of the trials on their study's final
    front."""
    return latest if best is None or latest.val_logloss < best.val_logloss - min_delta else best


def run_trial(config: dict[str, Any], data: CTRData, plan: dict[str, Any], results: Any | None = None) -> None:
    """The Tune trainable: one candidate, reported after every epoch (status "running", for
    the successive-halving scheduler) and once at the end (its final status). A searched trial's
    config carries its rung's rows and seed; a fixed one (a measurement) nests its own under "trial".
    ``results``: the run's ``result_cache`` actor (None: no reuse); the final report names its key
    (``result_key``) so that the driver can keep a trained result in the run folder."""
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
                "node": node_label(),
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
        "node": node_label(),
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
    cached = lookup(results, key)
    if cached is not None:  # the same architecture already trained to convergence in this run: reuse it
        tune.report({**base, **cached, "cached": True, "result_key": key})
        return

    best: Checkpoint | None = None

    def report_epoch(checkpoint: Checkpoint) -> None:
        nonlocal best
        best = best_checkpoint(best, checkpoint, settings.train.min_delta)
        tune.report(
            {
                **base,
                "status": "running",
                "epoch": checkpoint.epoch,
                "samples_seen": checkpoint.samples_seen,
                "best_epoch": best.epoch,
                "val_logloss": best.val_logloss,
                "val_auc": best.val_auc,
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
        share(results, key, final)
    tune.report({**base, **final, "cached": False, "result_key": key})
