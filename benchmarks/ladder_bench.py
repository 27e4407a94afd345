"""Benchmark the auto-scaling planner: wall time of the default plan and the held-out check.

Runs `unimixer-plan --flops 2e9 --dataset criteo` on the synthetic default and on the real
Criteo 10k sample (../shared/data/criteo), and reports, per family, the relative error of
predicting the largest proxy rung from the smaller ones.

Also the test split's check of the choice (chosen minus runner-up, paired) and the trial time the
plan spent (the sum of trials.csv's wall times) against its wall time. With ``--out`` it writes
plan.json and plan.md (the benchmarks page's "plan" section).

    python benchmarks/ladder_bench.py [--json] [--out bench-out/plan]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_io import run_meta, write_results

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "criteo" / "criteo_sampled_data_10k.csv"
EXE = str(Path(sys.executable).with_name("unimixer-plan"))


def run(name: str, extra: list[str], out: Path) -> dict:
    start = time.perf_counter()
    result = subprocess.run(
        [EXE, "--flops", "2e9", "--dataset", "criteo", *extra, "--out", str(out), "--json"],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        return {"data": name, "error": result.stderr.strip().splitlines()[-1], "wall_s": wall}
    # --json promises one JSON line on stdout; anything else there is recorded (it is a bug), not fatal
    lines = result.stdout.strip().splitlines()
    row = read_run(name, out, json.loads(lines[-1]), wall)
    return row | {"stdout_besides_json": lines[:-1]}


def read_run(name: str, out: Path, summary: dict, wall: float) -> dict:
    """The figures of a finished plan: its summary (stdout of --json) and its run folder."""
    scaling = json.loads((out / "scaling.json").read_text())
    held_out = {
        family: round(entry["held_out"]["relative_error"], 4)
        for family, entry in scaling["families"].items()
        if entry["held_out"]
    }
    chosen = summary["chosen"]
    with (out / "trials.csv").open() as table:
        walls = [float(r["wall_time_s"]) for r in csv.DictReader(table) if r["wall_time_s"] not in ("", "nan")]
    test = summary.get("test") or {}
    paired = test.get("paired") or {}
    return {
        "data": name,
        "wall_s": round(wall, 1),
        "trials": summary["trials"],
        "held_out_relative_error": held_out,
        "held_out_step": {f: e["held_out"]["step"] for f, e in scaling["families"].items() if e["held_out"]},
        "held_out_inside": {f: e["held_out"]["passed"] for f, e in scaling["families"].items() if e["held_out"]},
        "extrapolation": summary.get("extrapolation"),  # target / largest proxy: FLOPs, data
        "chosen_family": chosen["model"]["family"] if chosen else None,
        "chosen_flops": chosen["flops_fvcore"] if chosen else None,
        "predicted_logloss": chosen["val_logloss"] if chosen else None,
        "interval": chosen["val_logloss_interval"] if chosen else None,
        "trial_seconds": round(sum(w for w in walls if math.isfinite(w)), 1),
        "test_chosen": test.get("chosen", {}).get("logloss"),
        "test_runner_up": test.get("runner_up", {}).get("logloss"),
        "test_difference": paired.get("logloss_difference"),
        "test_interval": paired.get("logloss_interval"),
        "test_probability": paired.get("probability_chosen_better"),
    }


def markdown(rows: list[dict], meta: dict) -> str:
    fmt = lambda v, spec=".4f": "-" if v is None else format(v, spec)  # noqa: E731
    lines = [
        "The default plan end to end (`unimixer-plan --flops 2e9 --dataset criteo`, "
        f"{meta['date']}, {meta['machine']})",
        "",
        "| data | wall | trials | trial seconds | chosen | predicted [90 %] | held-out error | "
        "test: chosen - runner-up [90 %], P(chosen lower) |",
        "| --- | ---: | ---: | ---: | --- | --- | --- | --- |",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['data']} | {r['wall_s']:.0f} s | failed: {r['error']} | | | | | |")
            continue
        interval = r["interval"] or [None, None]
        test = r["test_interval"] or [None, None]
        held = ", ".join(f"{f} {e:.1%}" for f, e in r["held_out_relative_error"].items()) or "-"
        reach = r["extrapolation"] or {}
        lines.append(
            f"| {r['data']} | {r['wall_s']:.0f} s | {r['trials']} | {r['trial_seconds']:.0f} s "
            f"| {r['chosen_family']} at {r['chosen_flops']:.3g} ({fmt(reach.get('flops'), '.0f')}x FLOPs, "
            f"{fmt(reach.get('data'), '.0f')}x data beyond the top proxy) | {fmt(r['predicted_logloss'])} "
            f"[{fmt(interval[0])}, {fmt(interval[1])}] | {held} | {fmt(r['test_difference'], '+.4f')} "
            f"[{fmt(test[0], '+.4f')}, {fmt(test[1], '+.4f')}], {fmt(r['test_probability'], '.2f')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) if args.out is None else args.out / "runs"  # with --out the run folders are kept
        shutil.rmtree(runs, ignore_errors=True)
        rows.append(run("synthetic", [], runs / "synthetic"))
        if REAL.is_file():
            rows.append(run("real criteo 10k", ["--data", str(REAL)], runs / "real"))
    meta = run_meta()
    if args.out is not None:
        write_results(args.out, "plan", {"meta": meta, "rows": rows}, markdown(rows, meta))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
