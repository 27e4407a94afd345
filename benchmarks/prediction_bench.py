"""Does a plan's prediction hold when the predicted configuration is trained? A check that trains it.

For budgets that still train here, plan as a user would (a proxy ladder capped at ``--proxy-max-flops``,
so the target sits 4x and 16x beyond the largest proxy), then train the chosen configuration exactly
as chosen.yaml records it (``unimixer-plan train RUN/chosen.yaml``: the same data, the production data
size the prediction is for, the seed and the trainer) and compare the measured validation logloss with
the prediction and its 90 % interval. Cases: the synthetic default at two plan seeds and the shared
real Criteo sample, each at 4x and 16x. Writes JSON and a Markdown table.

    .venv/bin/python benchmarks/prediction_bench.py [--out bench-out/prediction] [--families ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "criteo" / "criteo_sampled_data_10k.csv"
EXE = str(Path(sys.executable).with_name("unimixer-plan"))
PROXY_MAX = 5e5
STEPS = {"4x": 2e6, "16x": 8e6}
CHECK = {True: "passed", False: "failed", None: "none"}


def cases(real: bool) -> list[dict]:
    out = [
        {"data": "synthetic", "seed": seed, "step": step, "args": ["--train-samples", "200000"]}
        for seed in (0, 1)
        for step in STEPS
    ]
    if real:  # every training row of the file: 7,999 of the 10k sample's 8:1:1 split
        out += [{"data": "real criteo 10k", "seed": 0, "step": step, "args": ["--data", str(REAL)]} for step in STEPS]
    return out


def run_case(case: dict, folder: Path, families: list[str]) -> dict:
    run_dir = folder / f"{case['data'].replace(' ', '-')}-s{case['seed']}-{case['step']}"
    plan = [
        EXE,
        "--flops",
        f"{STEPS[case['step']]:g}",
        "--proxy-max-flops",
        f"{PROXY_MAX:g}",
        "--seed",
        str(case["seed"]),
        *[part for family in families for part in ("--families", family)],
        *case["args"],
        "--out",
        str(run_dir),
        "--json",
    ]
    start = time.perf_counter()
    planned = subprocess.run(plan, capture_output=True, text=True)
    plan_s = time.perf_counter() - start
    if planned.returncode != 0:
        return case | {"error": planned.stderr.strip().splitlines()[-1]}
    summary = json.loads(planned.stdout)
    start = time.perf_counter()
    trained = subprocess.run([EXE, "train", str(run_dir / "chosen.yaml"), "--json"], capture_output=True, text=True)
    train_s = time.perf_counter() - start
    if trained.returncode != 0:
        return case | {"error": trained.stderr.strip().splitlines()[-1]}
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    low, high = result["predicted_interval"]
    measured, predicted = result["val_logloss"], result["predicted_val_logloss"]
    chosen = summary["chosen"]
    return {
        "data": case["data"],
        "seed": case["seed"],
        "step": case["step"],
        "family": chosen["model"]["family"],
        "flops": chosen["flops_fvcore"],
        "train_samples": summary["train_samples"],
        "extrapolation": chosen["extrapolation"],
        "predicted": predicted,
        "interval": [low, high],
        "measured": measured,
        "relative_error": abs(predicted - measured) / measured,
        "inside": low <= measured <= high,
        "held_out_passed": chosen["held_out"]["passed"] if chosen["held_out"] else None,
        "held_out": chosen["held_out"],
        "family_probabilities": summary.get("family_probabilities"),
        "warnings": summary.get("warnings", []),
        "plan_s": round(plan_s, 1),
        "train_s": round(train_s, 1),
    }


def table(rows: list[dict], meta: dict) -> str:
    lines = [
        f"Predictions checked by training the predicted model ({meta['date']}, {meta['machine']})",
        "",
        "| data | plan seed | target / largest proxy (FLOPs, data) | chosen | predicted [90 % interval] | measured "
        "| rel. error | inside | held-out check |",
        "| --- | ---: | --- | --- | --- | ---: | ---: | :---: | :---: |",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['data']} | {r['seed']} | {r['step']} | failed: {r['error']} | | | | | |")
            continue
        e = r["extrapolation"]
        lines.append(
            f"| {r['data']} | {r['seed']} | {e['flops']:.1f}x, {e['data']:.1f}x | {r['family']} at {r['flops']:.3g} "
            f"| {r['predicted']:.4f} [{r['interval'][0]:.4f}, {r['interval'][1]:.4f}] | {r['measured']:.4f} "
            f"| {r['relative_error']:.2%} | {'yes' if r['inside'] else 'no'} | {CHECK[r['held_out_passed']]} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "prediction")
    parser.add_argument("--families", nargs="+", default=[], help="default: the plan's own default families")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} CPUs, {platform.machine()}"}
    rows = []
    for case in cases(REAL.is_file()):
        rows.append(run_case(case, args.out, args.families))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)  # each case as it finishes
        payload = {"meta": meta, "rows": rows}
        (args.out / "prediction.json").write_text(json.dumps(payload, indent=2) + "\n")  # kept if interrupted
    (args.out / "prediction.md").write_text(table(rows, meta) + "\n")
    print(table(rows, meta))


if __name__ == "__main__":
    main()
