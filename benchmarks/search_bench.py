"""Search efficiency: the planner's search against MO-TPE, NSGA-II, random search and the grid.

On the small space of ``search_space.py``, recorded once by ``search_grid.py`` (every configuration
trained on the same rows with 3 seeds, replayed as their mean; ``benchmarks/results/search_grid.json``),
each method searches for the
(FLOPs/sample, validation logloss) front under a FLOPs budget, with the recording as its training:

- **planner**: the plan's own search path (``search.driver.run_search``: the cost-aware space,
  OptunaSearch on a SQLite study, multi-objective successive halving, the result cache), on a local
  Ray with 2 trials at a time, the trainable replaying the recorded per-epoch curve. The cost-aware
  space solves d_model in [16, 128]; a width between two recorded ones gets the curve interpolated
  in log2(d_model) between them (``surrogate``);
- **mo-tpe** and **nsga-ii**: Optuna's TPESampler (multi-objective) and NSGAIISampler on the plain
  space (family, its knobs, d_model in WIDTHS; flattened for NSGA-II, see ``plain_objective``), the
  budget as an Optuna constraint;
- **random**: RandomSampler on the same plain space;
- **grid**: every feasible point, in a seeded random order.

The score is the hypervolume of a method's completed trials (log10 FLOPs, logloss; reference: the
budget and the worst feasible grid point) over the grid's, after each trial and against the training
seconds the recording says its epochs took plus the search's own measured wall time (a trial
stopped early costs only its epochs). A trial is a model trained: the plain samplers' proposals
that train nothing (no such model, over the budget, a repeat) are told and asked again, as the
planner's searcher does with repeats (``run_optuna``). Writes JSON and a Markdown table.

    .venv/bin/python benchmarks/search_bench.py [--seeds 5] [--trials 40]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import numpy as np
import optuna
import unimixer_plan.ray_env  # noqa: F401  (Ray's environment before ray is imported)
from bench_io import run_meta, write_results
from ray import tune
from search_grid import GRID_FILE
from search_space import FIDELITY, VAL_ROWS, WIDTHS, bench_spaces, knob_choices
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.mixers import ConfigError, ModelConfig, analytic_cost
from unimixer_plan.plan_config import Budget, PlanConfig
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.search import driver
from unimixer_plan.search.optuna_search import model_key
from unimixer_plan.search.pareto import hypervolume, hypervolume_trace, non_dominated
from unimixer_plan.search.ray_session import ray_session
from unimixer_plan.search.rungs import Rung
from unimixer_plan.search.trainable import baseline_logloss, best_checkpoint
from unimixer_plan.search_spaces.cost_aware import build_config, family_knobs
from unimixer_plan.training.trainer import Checkpoint, TrainSettings

METHODS = ("planner", "mo-tpe", "nsga-ii", "random", "grid")
BUDGET_QUANTILE = 0.8  # the FLOPs budget admits this share of the grid
NSGA_POPULATION = 10  # NSGA-II's default of 50 is a whole small search: a user would lower it
MAX_ASKS_PER_TRIAL = 50  # a sampler that only repeats itself ends its search with fewer trials
OVER_BUDGET_LOGLOSS = 0.7  # told for a proposal over the budget (with its violated constraint)
MIN2 = ("min", "min")  # both objectives: log10 FLOPs/sample, validation logloss
GRID: dict[str, list[dict[str, Any]]] = {}  # set by main before the trials ship (cloudpickle by value)


def shape_key(model: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in model.items() if k != "d_model"}, sort_keys=True)


def mean_over_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One configuration's recorded seeds as one point: the mean curve (cut to the shortest seed's),
    its best epoch as the result, the mean wall time."""
    epochs = min(len(r["history"]) for r in runs)
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    history = [[e + 1, mean([r["history"][e][1] for r in runs])] for e in range(epochs)]
    best = min(range(epochs), key=lambda e: history[e][1])
    return {
        "model": runs[0]["model"],
        "flops": runs[0]["flops"],
        "status": "ok" if all(r["status"] == "ok" for r in runs) else "failed",
        "seeds": len(runs),
        # the best epoch of the mean curve, as a trial reports its best epoch: the replay stays consistent
        "val_logloss": history[best][1],
        "history": history,
        "wall_time_s": mean([r["wall_time_s"] for r in runs]),
        "epochs": epochs,
        "best_epoch": best + 1,
    }


def grid_points(recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_model: dict[str, list[dict[str, Any]]] = {}
    for run in recorded:
        by_model.setdefault(json.dumps(run["model"], sort_keys=True), []).append(run)
    return [mean_over_seeds(runs) for runs in by_model.values()]


def index_grid(points: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Recorded points by shape (everything but the width), ascending in d_model."""
    index: dict[str, list[dict[str, Any]]] = {}
    for point in points:
        index.setdefault(shape_key(point["model"]), []).append(point)
    return {k: sorted(v, key=lambda p: p["model"]["d_model"]) for k, v in index.items()}


def surrogate(model: dict[str, Any], grid: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The recorded result of ``model``: exact at a recorded width, interpolated in log2(d_model)
    between the two recorded widths around it (curves cut to the shorter one)."""
    points = grid[shape_key(model)]
    width = model["d_model"]
    below = max((p for p in points if p["model"]["d_model"] <= width), key=lambda p: p["model"]["d_model"])
    above = min((p for p in points if p["model"]["d_model"] >= width), key=lambda p: p["model"]["d_model"])
    if below is above:
        return {k: below[k] for k in ("val_logloss", "history", "wall_time_s", "epochs", "best_epoch")}
    lo, hi = math.log2(below["model"]["d_model"]), math.log2(above["model"]["d_model"])
    w = (math.log2(width) - lo) / (hi - lo)
    mix = lambda a, b: (1 - w) * a + w * b  # noqa: E731
    epochs = min(len(below["history"]), len(above["history"]))
    history = [[e + 1, mix(below["history"][e][1], above["history"][e][1])] for e in range(epochs)]
    best = min(range(epochs), key=lambda e: history[e][1])  # the interpolated curve's best epoch, as recorded
    return {
        "val_logloss": history[best][1],
        "history": history,
        "wall_time_s": mix(below["wall_time_s"], above["wall_time_s"]),
        "epochs": epochs,
        "best_epoch": best + 1,
    }


def replay_trial(config: dict[str, Any], data: Any, plan: dict[str, Any], results: Any = None) -> None:
    """``run_trial``'s reports, from the recording: each epoch (for successive halving), then the end."""
    if config["model"] is None:
        tune.report({"status": "infeasible", "epoch": 0, "flops": math.nan, "val_logloss": math.nan})
        return
    cost = analytic_cost(ModelConfig.from_dict(config["model"]))
    base = {"model_key": model_key(config), "flops": cost.flops, "params_dense": cost.params_dense}
    base |= {"distinct_samples": config["fidelity"], "latency_ms": math.nan}
    if not config["feasible"]:
        report = {"status": "infeasible", "epoch": 0, "val_logloss": baseline_logloss(data.val.labels)}
        tune.report({**base, **report, "wall_time_s": 0.0})
        return
    recorded = surrogate(config["model"], GRID)
    best = None
    for epoch, loss in recorded["history"]:  # the best epoch so far, as the trainable reports it
        checkpoint = Checkpoint(epoch, epoch * config["fidelity"], loss, math.nan, math.nan)
        best = best_checkpoint(best, checkpoint, TrainSettings().min_delta)
        tune.report({**base, "status": "running", "epoch": epoch, "val_logloss": best.val_logloss, "val_auc": math.nan})
    final = {"status": "ok", "epoch": recorded["epochs"], "val_logloss": recorded["val_logloss"]}
    final |= {"val_auc": math.nan, "best_epoch": recorded["best_epoch"], "wall_time_s": recorded["wall_time_s"]}
    tune.report({**base, **final, "samples_seen": recorded["epochs"] * config["fidelity"], "error": None})


def run_planner(seed: int, trials: int, budget: float, root: Path, data: Any) -> list[dict[str, Any]]:
    """The plan's search on the recording; one entry per trial, in the order trials ended."""
    cpus = os.cpu_count() or 1
    plan = PlanConfig(
        budget=Budget(flops=budget),
        trials=trials,
        fidelity=FIDELITY,
        seed=seed,
        out=str(root / f"planner-{seed}"),
        cpus_per_trial=cpus / 2,
    )
    folder = RunFolder(Path(plan.out))
    folder.path.mkdir(parents=True)
    folder.cache_dir.mkdir()
    rung = Rung(index=0, flops=budget, ceiling_flops=budget, study_name="bench", trials=trials, measure_latency=False)
    rows: list[dict[str, Any]] = []

    def on_row(record: Any) -> None:
        trained = record.family is not None and record.status.value in ("ok", "stopped")
        recorded = surrogate(record.model_config(data.schema).to_dict(), GRID) if trained else None
        rows.append(
            {
                "ok": record.status.value == "ok",
                "flops": record.flops,
                "val_logloss": record.val_logloss,
                # a stopped trial trained only the epochs it ran
                "train_s": recorded["wall_time_s"] * (record.epochs or 0) / recorded["epochs"] if recorded else 0.0,
            }
        )

    trainable, driver.run_trial = driver.run_trial, replay_trial  # the plan's search, the recording's training
    try:
        with ray_session(plan):
            driver.run_search(plan, folder, data, bench_spaces(), rung, 0, on_row)
    finally:
        driver.run_trial = trainable
    return rows


def propose(trial: optuna.Trial, schema: dict[str, Any], flat: bool) -> ModelConfig | None:
    """A configuration of the plain space, define-by-run: a family, then its knobs and width (None:
    no such model). ``flat`` suggests every family's knobs in every trial (the chosen family's are
    used): NSGA-II crosses over only the parameters all trials share, so on the conditional space it
    never leaves random sampling."""
    spaces = bench_spaces()
    family = trial.suggest_categorical("family", sorted(spaces))
    suggested = {}
    for name in sorted(spaces) if flat else [family]:
        choices = knob_choices(spaces[name]) | {"d_model": list(WIDTHS)}
        suggested[name] = {k: trial.suggest_categorical(f"{name}/{k}", v) for k, v in choices.items()}
    width = suggested[family].pop("d_model")
    try:
        config = build_config(family, family_knobs(spaces[family], suggested[family]), width, schema)
        analytic_cost(config)
    except ConfigError:
        return None
    return config


def run_optuna(method: str, seed: int, trials: int, budget: float, schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Ask and tell until ``trials`` models are trained. A proposal that trains nothing -- no such
    model, over the budget (both known without training) or a configuration already trained -- is
    told its known outcome and asked again, as the planner's searcher does with repeats; so a trial
    here, as for the planner, is a model trained."""
    sampler = {
        "mo-tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "nsga-ii": lambda: optuna.samplers.NSGAIISampler(seed=seed, population_size=NSGA_POPULATION),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }[method]()
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    trained: dict[str, tuple[float, float]] = {}
    rows: list[dict[str, Any]] = []
    for _ in range(MAX_ASKS_PER_TRIAL * trials):
        if len(rows) == trials:
            break
        trial = study.ask()
        config = propose(trial, schema, flat=method == "nsga-ii")
        if config is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        flops = analytic_cost(config).flops
        trial.set_constraint("flops", flops - budget)
        key = json.dumps(config.to_dict(), sort_keys=True)
        if flops > budget:
            study.tell(trial, [math.log10(flops), OVER_BUDGET_LOGLOSS])
            continue
        if key in trained:
            study.tell(trial, list(trained[key]))
            continue
        recorded = surrogate(config.to_dict(), GRID)
        trained[key] = (math.log10(flops), recorded["val_logloss"])
        study.tell(trial, list(trained[key]))
        row = {"ok": True, "flops": flops, "val_logloss": recorded["val_logloss"]}
        rows.append(row | {"train_s": recorded["wall_time_s"]})
    return rows


def run_grid(seed: int, feasible: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = np.random.default_rng(seed).permutation(len(feasible))
    return [
        {
            "ok": True,
            "flops": feasible[i]["flops"],
            "val_logloss": feasible[i]["val_logloss"],
            "train_s": feasible[i]["wall_time_s"],
        }
        for i in order
    ]


def score(
    rows: list[dict[str, Any]], reference: tuple[float, float], grid_hv: float, overhead_s: float = 0.0
) -> dict[str, Any]:
    """Hypervolume ratio after each trial, and the seconds spent by then: the recorded training of
    the epochs run plus the search's own measured wall time, spread evenly over its trials."""
    points = np.array([[math.log10(r["flops"]), r["val_logloss"]] if r["ok"] else [math.nan, math.nan] for r in rows])
    trace = hypervolume_trace(points, reference, MIN2) / grid_hv if len(rows) else np.zeros(0)
    per_trial = overhead_s / len(rows) if rows else 0.0
    return {
        "hv_ratio": [round(float(v), 5) for v in trace],
        "train_s": [round(float(v), 2) for v in np.cumsum([r["train_s"] + per_trial for r in rows])],
    }


def front_found(rows: list[dict[str, Any]], front: list[dict[str, Any]]) -> list[bool]:
    """Which of the grid's front points a search trained (the same FLOPs and logloss)."""
    seen = {(r["flops"], round(r["val_logloss"], 9)) for r in rows if r["ok"]}
    return [(p["flops"], round(p["val_logloss"], 9)) in seen for p in front]


def hv_lost_without(front: list, objectives: np.ndarray, feasible: list, reference: tuple, grid_hv: float) -> list:
    """The share of the grid's hypervolume each front point holds alone (lost if a search misses only it)."""
    shares = []
    for point in front:
        others = objectives[[p is not point for p in feasible]]
        shares.append(round(1 - hypervolume(others, reference, MIN2) / grid_hv, 4))
    return shares


def first_reaching(trace: list[float], goal: float) -> int | None:
    return next((n for n, v in enumerate(trace, 1) if v >= goal), None)


def summarise(runs: dict[str, list[dict[str, Any]]], grid_size: int) -> list[dict[str, Any]]:
    at = max(1, math.floor(0.15 * grid_size))
    table = []
    for method, seeds in runs.items():
        at_15 = [s["hv_ratio"][min(at, len(s["hv_ratio"])) - 1] for s in seeds]
        final = [s["hv_ratio"][-1] for s in seeds]
        reach = [first_reaching(s["hv_ratio"], 0.99) for s in seeds]
        table.append(
            {
                "method": method,
                "trials": len(seeds[0]["hv_ratio"]),
                "hv_at_15pct": [float(np.mean(at_15)), float(np.std(at_15))],
                "hv_final": [float(np.mean(final)), float(np.std(final))],
                "train_s_final": float(np.mean([s["train_s"][-1] for s in seeds])),
                "reached_099": sum(r is not None for r in reach),
                "trials_to_099": [r for r in reach if r is not None],
                "front_found": [sum(s.get("front_found", [])) for s in seeds],
            }
        )
    return table


def markdown(table: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    at = max(1, math.floor(0.15 * meta["grid_feasible"]))
    lines = [
        f"Search efficiency ({meta['date']}, {meta['machine']}): {meta['grid_feasible']} feasible grid points "
        f"(budget {meta['budget']:.3g} FLOPs/sample), {meta['seeds']} seeds; 15 % of the grid = {at} trials; "
        "hypervolume ratio to the grid's, mean ± sd over seeds; seconds: the recorded training of the epochs run, "
        "serial, plus the search's measured overhead",
        "",
        f"| method | trials | HV ratio at {at} trials | HV ratio at the end | seconds at the end "
        f"| seeds reaching 0.99 | trials to 0.99 | front points found (of {len(meta['grid_front'])}), per seed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in table:
        reach = ", ".join(map(str, r["trials_to_099"])) or "-"
        lines.append(
            f"| {r['method']} | {r['trials']} | {r['hv_at_15pct'][0]:.4f} ± {r['hv_at_15pct'][1]:.4f} "
            f"| {r['hv_final'][0]:.4f} ± {r['hv_final'][1]:.4f} | {r['train_s_final']:.0f} "
            f"| {r['reached_099']} of {meta['seeds']} | {reach} | {', '.join(map(str, r['front_found']))} |"
        )
    lines += ["", "The grid's front (the hypervolume each point holds alone):"]
    for p in meta["grid_front"]:
        m = p["model"]
        shape = f"{m['family']}, T={m['n_tokens']}, H={m.get('heads')}, d_model={m['d_model']}, depth {m['depth']}"
        lines.append(f"- {shape}: {p['flops']:.3g} FLOPs, logloss {p['val_logloss']:.4f} ({p['hv_lost_without']:.1%})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=None, help="per search (default: 30 %% of the feasible grid)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", type=Path, default=Path("bench-out/search"))
    args = parser.parse_args()
    recording = json.loads(GRID_FILE.read_text())
    points = [p for p in grid_points(recording["points"]) if p["status"] == "ok"]
    GRID.update(index_grid(points))
    budget = float(np.quantile([p["flops"] for p in points], BUDGET_QUANTILE))
    feasible = [p for p in points if p["flops"] <= budget]
    reference = (math.log10(budget), max(p["val_logloss"] for p in feasible) + 1e-3)
    objectives = np.array([[math.log10(p["flops"]), p["val_logloss"]] for p in feasible])
    front = sorted(
        (p for p, keep in zip(feasible, non_dominated(objectives, MIN2), strict=True) if keep), key=lambda p: p["flops"]
    )
    grid_hv = hypervolume(objectives, reference, MIN2)
    trials = args.trials or math.ceil(0.3 * len(feasible))
    data = load_data(DataSpec(synthetic_val_rows=VAL_ROWS), train_rows=FIDELITY)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.methods}
    wall: dict[str, float] = {m: 0.0 for m in args.methods}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as root:
        for seed in range(args.seeds):
            for method in args.methods:
                start = time.perf_counter()
                if method == "planner":
                    rows = run_planner(seed, trials, budget, Path(root), data)
                elif method == "grid":
                    rows = run_grid(seed, feasible)
                else:
                    rows = run_optuna(method, seed, trials, budget, data.schema)
                spent = time.perf_counter() - start
                wall[method] += spent
                scored = score(rows, reference, grid_hv, overhead_s=0.0 if method == "grid" else spent)
                runs[method].append(scored | {"front_found": front_found(rows, front)})
                print(
                    f"seed {seed} {method:<8} final HV ratio {runs[method][-1]['hv_ratio'][-1]:.4f}",
                    file=sys.stderr,
                    flush=True,
                )
    meta = run_meta(
        grid_recorded=recording["meta"],
        grid_points=len(points),
        grid_feasible=len(feasible),
        grid_front=[
            {"model": p["model"], "flops": p["flops"], "val_logloss": p["val_logloss"], "hv_lost_without": lost}
            for p, lost in zip(front, hv_lost_without(front, objectives, feasible, reference, grid_hv), strict=True)
        ],
        budget=budget,
        reference=reference,
        seeds=args.seeds,
        search_overhead_s={m: round(w / args.seeds, 1) for m, w in wall.items()},
    )
    table = summarise(runs, len(feasible))
    text = markdown(table, meta)
    write_results(args.out, "search", {"meta": meta, "table": table, "runs": runs}, text)
    print(text)


if __name__ == "__main__":
    main()
