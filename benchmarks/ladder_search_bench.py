"""Benchmark the ladder's search against the layout it replaced, at the same trial count.

- ``joint`` (the planner's): one Optuna study per rung over every family, each family an equal
  share of it: first its best shape of the rung below (the warm start), then TPE's proposals for
  its knobs and cost level once the warm starts have reported; constant liar, successive halving
  within each family.
- ``per-family`` (before 2026-12-05): one study per (rung, family) of trials / (rungs x families)
  trials each, no warm start, TPE's 10 random start-up trials never left: random shapes.

Both run the same plan (a ladder on the synthetic default) and seed; only the searches run (no
measurements, scale-up or test check). Per rung and layout: the hypervolume of the rung's
full-fidelity search trials in (val logloss, log10 FLOPs/sample) against a reference both layouts
share (the validation labels' base-rate logloss, the rung's budget), the rung's best logloss and
each family's best (its scaling point).

    python benchmarks/ladder_search_bench.py [--seeds 3] [--trials 45] [--out bench-out/ladder_search]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from bench_io import run_meta, write_results
from unimixer_plan import plan as plan_module
from unimixer_plan.mixers import analytic_cost
from unimixer_plan.plan_config import Budget, PlanConfig
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.scaling.ladder import LADDER_MIN_COST_LEVEL, ladder_rungs
from unimixer_plan.search import driver
from unimixer_plan.search.optuna_search import PlanSearch
from unimixer_plan.search.pareto import hypervolume
from unimixer_plan.search.rungs import Rung, SearchRunner
from unimixer_plan.search.trainable import baseline_logloss
from unimixer_plan.search_spaces import DEFAULT_PLAN_FAMILIES, smallest_config

LAYOUTS = ("joint", "per-family")


class SearchesDone(Exception):
    """Raised in place of the measurements: the benchmark compares searches only."""


def searches_only(runner: SearchRunner) -> SearchRunner:
    def run_rung(plan, folder, data, spaces, rung: Rung, attempt, on_row) -> int:
        if rung.fixed:
            raise SearchesDone
        return runner.run_rung(plan, folder, data, spaces, rung, attempt, on_row)

    return replace(runner, run_rung=run_rung)


def per_family_rungs(plan: PlanConfig, spaces, schema, available) -> list[Rung]:
    """The layout before 2026-12-05: a study per (rung, family), the trials split evenly."""
    bottom = 2 * analytic_cost(smallest_config(spaces, schema)).flops
    ladder = ladder_rungs(plan.budget.flops, plan, bottom, available)
    searched = plan.trials - plan_module.measurement_count(len(ladder), len(spaces))
    per_study = searched // (len(ladder) * len(spaces))
    return [
        Rung(k + 1, b, b, f"rung-{k + 1}-{f}", per_study, False, (f,), LADDER_MIN_COST_LEVEL, samples=n)
        for k, (b, n) in enumerate(ladder)
        for f in sorted(spaces)
    ]


class PerFamilySearch(PlanSearch):
    """The searcher as it was: proposals never wait for start-up results, no family balancing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "model_after": 0, "balance_families": ()})


@contextmanager
def layout(name: str) -> Iterator[None]:
    """The per-family layout swaps in its rungs, no warm start, Optuna's random start-up and the
    searcher as it was."""
    if name == "joint":
        yield
        return
    saved = plan_module.plan_rungs, plan_module.warm_start_points, driver.startup_trials, driver.PlanSearch
    plan_module.plan_rungs = per_family_rungs
    plan_module.warm_start_points = lambda *args: ()
    driver.startup_trials = lambda rung, families: driver.DIRECT_STARTUP_TRIALS
    driver.PlanSearch = PerFamilySearch
    try:
        yield
    finally:
        plan_module.plan_rungs, plan_module.warm_start_points, driver.startup_trials, driver.PlanSearch = saved


def run_layout(name: str, plan: PlanConfig) -> tuple[list[Any], float]:
    start = time.perf_counter()
    with layout(name), suppress(SearchesDone):
        plan_module.run_plan(plan, search=searches_only(driver.RAY_SEARCH))
    return RunFolder(Path(plan.out)).load_trials(), time.perf_counter() - start


def rung_numbers(rows: list[Any], rung: int, budget: float, base: float, families: list[str]) -> dict[str, Any]:
    done = [r for r in rows if r.is_search and r.rung == rung and r.is_complete]
    points = np.array([[r.val_logloss, math.log10(r.flops)] for r in done]) if done else np.zeros((0, 2))
    best = {f: min((r.val_logloss for r in done if r.family == f), default=math.nan) for f in families}
    return {
        "trials": sum(r.is_search and r.rung == rung for r in rows),
        "complete": len(done),
        "hypervolume": hypervolume(points, [base, math.log10(budget)], ["min", "min"]),
        "best": min((r.val_logloss for r in done), default=math.nan),
        "family_best": best,
    }


def mean_sd(values: list[float]) -> str:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {sd:.4f}"


def table(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [
        f"Ladder search ({meta['date']}, {meta['machine']}): `{meta['plan']}`, {meta['trials']} search trials "
        f"per plan (the measurements are not run), {len(result['seeds'])} seeds; mean ± sd over seeds",
        "",
        "| rung | FLOPs/sample | rows | layout | hypervolume | best val logloss | "
        + " | ".join(f"best {f}" for f in result["families"])
        + " | search wall s |",
        "|---" * (7 + len(result["families"])) + "|",
    ]
    for rung in result["rungs"]:
        for name in LAYOUTS:
            runs = [seed[name] for seed in result["seeds"]]
            at = [run["rungs"][str(rung["index"])] for run in runs]
            cells = [mean_sd([a["family_best"][f] for a in at]) for f in result["families"]]
            lines.append(
                f"| {rung['index']} | {rung['flops']:.3g} | {rung['samples']:,} | {name} | "
                f"{mean_sd([a['hypervolume'] for a in at])} | {mean_sd([a['best'] for a in at])} | "
                + " | ".join(cells)
                + f" | {statistics.fmean(run['wall_s'] for run in runs):.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=45, help="the plan's --trials (measurements included)")
    parser.add_argument("--flops", type=float, default=2.4e7)
    parser.add_argument("--proxy-max-flops", type=float, default=1.5e6)
    parser.add_argument("--fidelity", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("bench-out/ladder_search"))
    args = parser.parse_args()
    base_plan = PlanConfig(
        budget=Budget(flops=args.flops),
        trials=args.trials,
        fidelity=args.fidelity,
        proxy_max_flops=args.proxy_max_flops,
        test_seeds=0,
        families=DEFAULT_PLAN_FAMILIES,  # the CLI's default (PlanConfig's own empty default means all five)
    )
    spaces = plan_module.plan_spaces(base_plan)
    data, rungs = plan_module.plan_data_and_rungs(base_plan, spaces)
    base = baseline_logloss(data.val.labels)
    families = sorted(spaces)
    searched = sum(r.trials for r in rungs)
    seeds = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in range(args.seeds):
            runs = {}
            for name in LAYOUTS:
                plan = replace(base_plan, seed=seed, out=str(Path(scratch) / f"{name}-{seed}"))
                rows, wall = run_layout(name, plan)
                if sum(r.is_search for r in rows) != searched:  # the comparison is at the same trial count
                    raise SystemExit(f"{name}: {sum(r.is_search for r in rows)} search trials, not {searched}")
                runs[name] = {
                    "wall_s": wall,
                    "trials": sum(r.is_search for r in rows),
                    "rungs": {str(r.index): rung_numbers(rows, r.index, r.flops, base, families) for r in rungs},
                }
                print(f"seed {seed} {name}: {runs[name]['trials']} trials, {wall:.0f} s", file=sys.stderr)
            seeds.append(runs)
    result = {
        "meta": run_meta(
            plan=f"unimixer-plan --flops {args.flops:g} --proxy-max-flops {args.proxy_max_flops:g} "
            f"--fidelity {args.fidelity} --trials {args.trials}",
            trials=searched,
            base_rate_logloss=base,
        ),
        "families": families,
        "rungs": [{"index": r.index, "flops": r.flops, "samples": r.samples} for r in rungs],
        "seeds": seeds,
    }
    text = table(result)
    write_results(args.out, "ladder_search", result, text)
    print(text)


if __name__ == "__main__":
    main()
