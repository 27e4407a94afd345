"""Record the search-efficiency benchmark's grid: every configuration of ``search_space`` trained once.

Each point is trained by the planner's trainer (``training.trainer.evaluate``) on the synthetic
default at ``search_space.FIDELITY`` distinct rows, once per seed, as a search trial is: early
stopping on validation, the per-epoch curve kept (successive halving replays it) with the wall time.
The file ``benchmarks/results/search_grid.json`` is the recording ``search_bench.py`` replays (the
mean over seeds: one seed's luck would make the landscape a lottery). A run adds the seeds the file
does not hold yet; record it again from scratch (delete it) when the trainer or the models change.

    .venv/bin/python benchmarks/search_grid.py [--seeds 0 1 2] [--workers 2] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from search_space import FIDELITY, VAL_ROWS, bench_spaces, grid_configs
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.mixers import ModelConfig, analytic_cost

GRID_FILE = Path(__file__).parent / "results" / "search_grid.json"
_DATA = None


def _data():
    global _DATA
    if _DATA is None:
        _DATA = load_data(DataSpec(synthetic_val_rows=VAL_ROWS), train_rows=FIDELITY)
    return _DATA


def train_point(model: dict[str, Any], seed: int) -> dict[str, Any]:
    import torch
    from unimixer_plan.training.trainer import evaluate

    torch.set_num_threads(1)
    config = ModelConfig.from_dict(model)
    cost = analytic_cost(config)
    result = evaluate(config, _data(), FIDELITY, seed=seed)
    return {
        "model": model,
        "seed": seed,
        "flops": cost.flops,
        "params_dense": cost.params_dense,
        "status": result.status,
        "val_logloss": result.val_logloss,
        "val_auc": result.val_auc,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "wall_time_s": round(result.wall_time_s, 3),
        "history": [[c.epoch, round(c.val_logloss, 6)] for c in result.history],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, default=None, help="record only the first N points (a trial run)")
    parser.add_argument("--out", type=Path, default=GRID_FILE)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    configs = grid_configs(bench_spaces(), _data().schema)[: args.limit]
    recorded = json.loads(args.out.read_text()) if args.out.exists() else {"meta": {"wall_s": 0.0}, "points": []}
    done = {(json.dumps(p["model"], sort_keys=True), p["seed"]) for p in recorded["points"]}
    todo = [
        (c.to_dict(), s)
        for s in args.seeds
        for c in configs
        if (json.dumps(c.to_dict(), sort_keys=True), s) not in done
    ]
    start = time.perf_counter()
    points = recorded["points"]
    with ProcessPoolExecutor(args.workers) as pool:
        for n, point in enumerate(pool.map(train_point, *zip(*todo, strict=True)) if todo else [], 1):
            points.append(point)
            print(
                f"\r{n}/{len(todo)} seed {point['seed']} {point['model']['family']:<15} {point['flops']:.3g} FLOPs "
                f"{point['val_logloss']:.4f} {point['wall_time_s']:.1f} s",
                end="",
                file=sys.stderr,
                flush=True,
            )
    print(file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": machine, "fidelity": FIDELITY, "val_rows": VAL_ROWS}
    meta |= {"seeds": sorted({p["seed"] for p in points}), "workers": args.workers}
    meta["wall_s"] = round(recorded["meta"]["wall_s"] + time.perf_counter() - start, 1)
    args.out.write_text(json.dumps({"meta": meta, "points": points}, indent=1) + "\n")
    print(f"{len(points)} points in {meta['wall_s']:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
