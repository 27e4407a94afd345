"""Calibration of the plan's 90 % prediction interval on planted-truth ladders.

Ladders from ``unimixer_plan.scaling.calibration`` (the plan's design in compute and data, truth ranges
documented there): for each number of rungs (3-5, two points each) and each compute extrapolation
(target / largest rung: 100x, 1,000x; data 30-600x), predict as the plan does (posterior, held-out
check, misspecification term) and score the nominal 90 % interval at the target. Three priors: sigma
measured by seed replicates with the Bayes floor known (what the plan does on synthetic data), sigma
marginalised without replicates, and replicates with the floor's lower bound at 0 (what the plan does
on real data). Prints the coverage, median interval width and median absolute error of the median,
per cell and pooled. Goal: coverage near 0.90 in every row, never a bootstrap's 0-2 % with few points.

    .venv/bin/python benchmarks/calibration_bench.py [--ladders 200] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from unimixer_plan.scaling.calibration import Outcome, simulate

RUNGS = (3, 4, 5)
FACTORS = (100.0, 1000.0)
MODES = {
    "sigma from seed replicates, Bayes floor known (synthetic plans)": {"measured_sigma": True, "known_floor": True},
    "sigma marginalised, no replicates": {"measured_sigma": False, "known_floor": True},
    "sigma from replicates, floor bound 0 (real-data plans)": {"measured_sigma": True, "known_floor": False},
}


def row(outcomes: list[Outcome]) -> dict[str, float]:
    return {
        "ladders": len(outcomes),
        "coverage": float(np.mean([o.covered for o in outcomes])),
        "median_width": float(np.median([o.width for o in outcomes])),
        "median_abs_error": float(np.median([o.error for o in outcomes])),
        "failed_checks": float(np.mean([o.check_failed for o in outcomes])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ladders", type=int, default=60, help="ladders per (rungs, factor) cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for mode, options in MODES.items():
        start = time.perf_counter()
        table: dict[str, dict[str, float]] = {}
        every: list[Outcome] = []
        for factor in FACTORS:
            for rungs in RUNGS:
                seed = args.seed * 1000 + rungs * 10 + int(np.log10(factor))
                outcomes = simulate(args.ladders, (rungs,), seed=seed, factor=factor, **options)
                table[f"{rungs} rungs, {factor:g}x"] = row(outcomes)
                every += outcomes
        for rungs in RUNGS:
            table[f"{rungs} rungs, pooled"] = row([o for o in every if o.points == 2 * rungs])
        table["all"] = row(every)
        table["all"]["seconds"] = time.perf_counter() - start
        results[mode] = table
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for mode, table in results.items():
        print(f"\n{mode} (nominal 90 %)")
        print(f"{'cell':<22}{'ladders':>8}{'coverage':>10}{'med width':>11}{'med |err|':>11}{'failed chk':>11}")
        for name, r in table.items():
            print(
                f"{name:<22}{r['ladders']:>8}{r['coverage']:>10.3f}{r['median_width']:>11.4f}"
                f"{r['median_abs_error']:>11.4f}{r['failed_checks']:>11.3f}"
            )
        print(f"({table['all']['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
