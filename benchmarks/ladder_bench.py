"""Benchmark the auto-scaling planner: wall time of the default plan and the held-out check.

Runs `unimixer-plan --flops 2e9 --dataset criteo` on the synthetic default and on the real
Criteo 10k sample (../shared/data/criteo), and reports, per family, the relative error of
predicting the largest proxy rung from the smaller ones.

    python benchmarks/ladder_bench.py [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    summary = json.loads(result.stdout)
    scaling = json.loads((out / "scaling.json").read_text())
    held_out = {
        family: round(entry["held_out"]["relative_error"], 4)
        for family, entry in scaling["families"].items()
        if entry["held_out"]
    }
    chosen = summary["chosen"]
    return {
        "data": name,
        "wall_s": round(wall, 1),
        "trials": summary["trials"],
        "held_out_relative_error": held_out,
        "extrapolation_factor": {
            f: round(e["held_out"]["extrapolation_factor"], 2) for f, e in scaling["families"].items() if e["held_out"]
        },
        "chosen_family": chosen["model"]["family"] if chosen else None,
        "chosen_flops": chosen["flops_fvcore"] if chosen else None,
        "predicted_logloss": chosen["val_logloss"] if chosen else None,
        "interval": chosen["val_logloss_interval"] if chosen else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(run("synthetic", [], Path(tmp) / "synthetic"))
        if REAL.is_file():
            rows.append(run("real criteo 10k", ["--data", str(REAL)], Path(tmp) / "real"))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
