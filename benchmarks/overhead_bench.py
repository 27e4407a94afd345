"""What Ray Tune + Optuna cost per trial, at 1,000 trials: the planner's own search with training swapped out.

The rung runs through ``unimixer_plan.search.driver.run_search`` exactly as a plan's does (the cost-aware
space, OptunaSearch with its SQLite study, multi-objective successive halving, the result-cache actor,
trials.csv appended by the driver), on the local Ray a plan starts. Only the trainable is replaced: a
fixed amount of single-threaded CPU work (``--work-ms``, split over its epochs) reported like
``search.trainable.run_trial`` reports (each epoch, then the final result). So

    overhead per trial = (wall * workers - work done) / trials      (the time a worker is not training)

and the throughput ratio of 2 workers to 1 says whether trials scale over the local CPUs. Driver peak
RSS is this process's (Ray's workers are separate processes). Writes JSON and a Markdown table.

    .venv/bin/python benchmarks/overhead_bench.py [--trials 1000] [--work-ms 200] [--out bench-out/overhead]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import unimixer_plan.ray_env  # noqa: F401  (Ray's environment before ray is imported)
from ray import tune
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.mixers import ModelConfig, analytic_cost
from unimixer_plan.plan_config import Budget, PlanConfig
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.search import driver
from unimixer_plan.search.optuna_search import model_key
from unimixer_plan.search.ray_session import ray_session
from unimixer_plan.search.rungs import Rung
from unimixer_plan.search_spaces import load_spaces

BUDGET = 2e7  # a wide space: 1,000 proposals of a small one are mostly repeats
EPOCHS = 3
WORK_S = 0.2  # set by main before the trials are shipped: cloudpickle sends this script's globals by value


def busy(seconds: float) -> None:
    """Single-threaded CPU work for ``seconds`` (a stand-in for training that a second worker can overlap)."""
    import torch

    torch.set_num_threads(1)
    a = torch.randn(64, 64)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a = torch.tanh(a @ a)


def cheap_trial(config: dict[str, Any], data: Any, plan: dict[str, Any], results: Any = None) -> None:
    """``run_trial``'s reports without its training: a logloss that falls with FLOPs, epochs of fixed work."""
    if config["model"] is None:
        tune.report({"status": "infeasible", "epoch": 0, "flops": math.nan, "val_logloss": math.nan})
        return
    model = ModelConfig.from_dict(config["model"])
    cost = analytic_cost(model)
    base = {"model_key": model_key(config), "flops": cost.flops, "params_dense": cost.params_dense}
    base |= {"distinct_samples": config["fidelity"], "latency_ms": math.nan}
    # noise by architecture, so that successive halving finds dominated trials to stop
    floor = 0.45 + 0.3 * cost.flops**-0.15 + random.Random(base["model_key"]).gauss(0, 0.01)
    per_epoch = WORK_S / EPOCHS
    for epoch in range(1, EPOCHS + 1):
        busy(per_epoch)
        loss = floor + 0.05 / epoch
        tune.report({**base, "status": "running", "epoch": epoch, "val_logloss": loss, "val_auc": 0.7})
    tune.report(
        {**base, "status": "ok", "epoch": EPOCHS, "val_logloss": loss, "val_auc": 0.7, "best_epoch": EPOCHS}
        | {"samples_seen": EPOCHS * config["fidelity"], "wall_time_s": WORK_S, "error": None}
    )


def run(trials: int, workers: int, root: Path) -> dict[str, Any]:
    cpus = os.cpu_count() or 1
    plan = PlanConfig(
        budget=Budget(flops=BUDGET),
        trials=trials,
        fidelity=2_000,
        out=str(root / f"workers-{workers}"),
        cpus_per_trial=cpus / workers,
    )
    folder = RunFolder(Path(plan.out))
    folder.path.mkdir(parents=True)
    folder.cache_dir.mkdir()
    data = load_data(DataSpec(seed=0, vocab_cap=1_000, synthetic_val_rows=1_024), train_rows=2_000)
    spaces = load_spaces()
    rung = Rung(index=0, flops=BUDGET, ceiling_flops=BUDGET, study_name="bench", trials=trials, measure_latency=False)
    driver.run_trial = cheap_trial
    ended: list[float] = []
    with ray_session(plan):
        start = time.perf_counter()
        recorded = driver.run_search(
            plan, folder, data, spaces, rung, 0, lambda record: ended.append(time.perf_counter())
        )
        wall = time.perf_counter() - start
    # how the cost per trial grows with the study: seconds per trial over each window of 100 trials
    marks = [start, *ended[99::100]]
    per_window = [round((b - a) / 100, 3) for a, b in itertools.pairwise(marks)]
    asks = len(optuna.load_study(study_name="bench", storage=folder.optuna_url).trials)
    rows = folder.load_trials()
    worked = sum((r.epochs or 0) for r in rows) * WORK_S / EPOCHS  # a stopped trial worked its epochs only
    statuses = {s: sum(r.status.value == s for r in rows) for s in ("ok", "stopped", "failed", "infeasible")}
    return {
        "workers": workers,
        "trials": recorded,
        "statuses": statuses,
        "wall_s": round(wall, 1),
        "trials_per_s": round(recorded / wall, 3),
        "work_ms": round(WORK_S * 1000),
        "overhead_s_per_trial": round((wall * workers - worked) / recorded, 3),
        "optuna_asks": asks,  # proposals told to Optuna: a repeat of a trained architecture is asked again
        "s_per_trial_by_100": per_window,
        "driver_peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def table(rows: list[dict[str, Any]], machine: str) -> str:
    lines = [
        f"Overhead at {rows[0]['trials']} trials, {rows[0]['work_ms']} ms of work each ({machine})",
        "",
        "| workers | wall | trials/s | overhead per trial | Optuna asks | s/trial, per 100 trials "
        "| driver peak RSS | statuses |",
        "| ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for r in rows:
        statuses = ", ".join(f"{k} {v}" for k, v in r["statuses"].items() if v)
        lines.append(
            f"| {r['workers']} | {r['wall_s']:.0f} s | {r['trials_per_s']:.2f} | {r['overhead_s_per_trial']:.3f} s "
            f"| {r['optuna_asks']} | {', '.join(f'{w:.2f}' for w in r['s_per_trial_by_100'])} "
            f"| {r['driver_peak_rss_gb']:.2f} GB | {statuses} |"
        )
    if len(rows) == 2:
        lines += ["", f"2 workers / 1 worker throughput: {rows[1]['trials_per_s'] / rows[0]['trials_per_s']:.2f}x"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1_000)
    parser.add_argument("--work-ms", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=Path("bench-out/overhead"))
    args = parser.parse_args()
    global WORK_S
    WORK_S = args.work_ms / 1000
    args.out.mkdir(parents=True, exist_ok=True)
    machine = f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}"
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for workers in args.workers:  # one run per process would reset RSS; one Ray per run, started here
            rows.append(run(args.trials, workers, Path(root)))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    (args.out / "overhead.json").write_text(json.dumps({"machine": machine, "runs": rows}, indent=2) + "\n")
    text = table(rows, machine)
    (args.out / "overhead.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
