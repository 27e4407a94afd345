"""What successive halving cost a finished plan: its stopped trials, re-trained to full fidelity.

For every trial a plan's successive halving stopped (``status`` stopped in trials.csv), train the
same architecture with the same rows, seed and trainer settings to its end, as the plan would have,
and compare it with the trials of its study (same rung, family and role) that finished: would it
have been on the study's (logloss, FLOPs) front, or beaten the study's best? On one thread, as a
plan's trials train.

    .venv/bin/python benchmarks/halving_check.py RUN_DIR [RUN_DIR ...] [--out bench-out/halving]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from bench_io import run_meta, write_results
from unimixer_plan.data import load_data
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.trial_record import TrialStatus
from unimixer_plan.training.trainer import evaluate


def check_run(run: Path) -> list[dict[str, object]]:
    folder = RunFolder(run)
    plan, rows = folder.load_plan(), folder.load_trials()
    checked = []
    for stopped in (r for r in rows if r.status is TrialStatus.STOPPED):
        data = load_data(plan.data, train_rows=stopped.fidelity)
        config = stopped.model_config(data.schema)
        full = evaluate(config, data, stopped.fidelity, seed=stopped.seed, settings=plan.train)
        study = [
            r
            for r in rows
            if (r.rung, r.family, r.role) == (stopped.rung, stopped.family, stopped.role) and r.is_complete
        ]
        best = min((r.val_logloss for r in study), default=math.nan)
        dominated = any(r.val_logloss <= full.val_logloss and r.flops <= stopped.flops for r in study)
        checked.append(
            {
                "run": str(run),
                "trial": stopped.trial_id,
                "rung": stopped.rung,
                "family": stopped.family,
                "flops": stopped.flops,
                "logloss_at_stop": stopped.val_logloss,
                "logloss_full": full.val_logloss,
                "study_best": best,
                "would_be_on_front": not dominated,
                "would_beat_best": full.val_logloss < best,
            }
        )
        print(json.dumps(checked[-1]), flush=True)
    return checked


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        f"Stopped trials re-trained to full fidelity ({meta['date']})",
        "",
        "| run | trial | rung | family | at the stop | full fidelity | study's best | on its front? |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {Path(r['run']).name} | {r['trial']} | {r['rung']} | {r['family']} | {r['logloss_at_stop']:.4f} "
            f"| {r['logloss_full']:.4f} | {r['study_best']:.4f} | {'yes' if r['would_be_on_front'] else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [row for run in args.runs for row in check_run(run)]
    meta = run_meta()
    table = markdown(rows, meta)
    if args.out:
        write_results(args.out, "halving", {"meta": meta, "rows": rows}, table)
    print(table)


if __name__ == "__main__":
    main()
