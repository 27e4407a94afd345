"""Training steps per second: the project's trainer vs TorchRec under DistributedModelParallel (1 and 2
processes), on the same config and data; and the issue's must-show check (validation AUC of
`train --engine torchrec --nproc 2` within 0.01 of the project's trainer, tables on both ranks).

    .venv/bin/python benchmarks/torchrec_bench.py [--data CSV] [--steps 30] [--repeats 3] [--out FILE]

A step is one optimiser step on the global batch (256 rows, the trainer's default), so steps/s compare
directly; TorchRec's 2 processes each take half of every batch. Each engine runs with 1 torch thread
per process and, in one process, with as many threads as cores (what `train` uses), since on a
loaded machine the thread count alone changes the speed several-fold. The timed steps follow 5 warm-up
steps; each engine reports the median of ``--repeats`` timings of ``--steps`` steps. Prints a table
and writes JSON (default bench-out/torchrec_bench.json). Needs TorchRec (README: TorchRec hand-off).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "unimixing_lite.yaml"
SHARED_CSV = ROOT.parent / "shared" / "data" / "criteo" / "criteo_sampled_data_10k.csv"
WARMUP = 5
BATCH = 256  # fixed, so that every engine's step is the same work (the trainer's own rule may differ)


def load(data_path: Path):
    from unimixer_plan.data import DataSpec, load_data
    from unimixer_plan.mixers import load_config

    data = load_data(DataSpec(path=str(data_path)))
    return load_config(EXAMPLE).replace(**data.schema), data


def timed(engine, rows: int, batch: int, steps: int, repeats: int, barrier=None) -> float:
    """Median steps/s over ``repeats`` runs of ``steps`` steps (after WARMUP steps)."""
    generator = torch.Generator().manual_seed(0)
    engine.train_mode()
    engine.scale_learning_rates(1.0)

    def step() -> None:
        assert engine.train_step(torch.randperm(rows, generator=generator)[:batch])

    for _ in range(WARMUP):
        step()
    rates = []
    for _ in range(repeats):
        if barrier is not None:
            barrier()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if barrier is not None:
            barrier()
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


def project_rate(optimizer: str, data_path: Path, steps: int, repeats: int, threads: int) -> float:
    from unimixer_plan.mixers import build_model
    from unimixer_plan.training.learning_rate import learning_rate_for
    from unimixer_plan.training.trainer import TrainSettings, _LocalEngine

    config, data = load(data_path)
    settings = TrainSettings(batch_size=BATCH, embedding_optimizer=optimizer)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    engine = _LocalEngine(build_model(config), data, settings, learning_rate_for(config), "cpu")
    return timed(engine, len(data.train), settings.batch_size, steps, repeats)


def _torchrec_rank(
    rank: int, nproc: int, threads: int, port: int, data_path: str, steps: int, repeats: int, out: str
) -> None:
    import torch.distributed as dist
    from unimixer_plan.training.learning_rate import learning_rate_for
    from unimixer_plan.training.torchrec_trainer import RankEnv, TorchRecJob, _TorchRecEngine
    from unimixer_plan.training.trainer import TrainSettings

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(nproc))
    os.environ.update(LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(nproc))
    torch.set_num_threads(threads)
    config, data = load(Path(data_path))
    settings = TrainSettings(batch_size=BATCH)
    dist.init_process_group("gloo")
    job = TorchRecJob(config, len(data.train), 0, settings)
    engine = _TorchRecEngine(job, data, RankEnv.from_environ(), torch.device("cpu"), learning_rate_for(config))
    rate = timed(engine, len(data.train), settings.batch_size, steps, repeats, barrier=dist.barrier)
    if rank == 0:
        Path(out).write_text(json.dumps({"steps_per_s": rate, "optimizer": engine.optimizer.describe()}))
    dist.destroy_process_group()


def torchrec_rate(nproc: int, threads: int, data_path: Path, steps: int, repeats: int, folder: Path) -> dict:
    import torch.multiprocessing as mp
    from unimixer_plan.training.torchrec_launch import _free_port

    out = folder / f"torchrec_{nproc}.json"
    args = (nproc, threads, _free_port(), str(data_path), steps, repeats, str(out))
    mp.start_processes(_torchrec_rank, args=args, nprocs=nproc, start_method="spawn")
    return json.loads(out.read_text())


def must_show(data_path: Path) -> dict:
    """The issue's command and the project trainer's, same seed and data, through the CLI."""
    command = str(Path(sys.executable).parent / "unimixer-plan")  # the console script beside this Python
    base = [command, "train", str(EXAMPLE), "--data", str(data_path)]
    runs = {}
    for name, extra in (("project", []), ("torchrec", ["--engine", "torchrec", "--nproc", "2"])):
        start = time.perf_counter()
        done = subprocess.run([*base, "--seed", "0", *extra, "--json"], capture_output=True, text=True, check=True)
        runs[name] = json.loads(done.stdout.strip().splitlines()[-1]) | {"command_s": time.perf_counter() - start}
    plan = runs["torchrec"]["sharding_plan"]
    ranks = sorted({rank for p in plan.values() for rank in p["ranks"]})
    per_rank = {r: sum(r in p["ranks"] for p in plan.values()) for r in ranks}
    keep = ("val_auc", "val_logloss", "epochs", "best_epoch", "wall_time_s", "command_s")
    gap = runs["torchrec"]["val_auc"] - runs["project"]["val_auc"]
    return {
        "project": {k: runs["project"][k] for k in keep},
        "torchrec": {k: runs["torchrec"][k] for k in keep} | {"tables_per_rank": per_rank},
        "auc_gap": gap,
        "passes": abs(gap) <= 0.01 and ranks == [0, 1],
        "embedding_optimizer": runs["torchrec"]["embedding_optimizer"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_CSV)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "torchrec_bench.json")
    parser.add_argument("--skip-must-show", action="store_true")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    rows = []  # (engine, processes, threads per process, steps/s)
    for threads in sorted({1, cores}):
        for name, optimizer in (("SparseAdam", "sparse_adam"), ("Adagrad", "adagrad")):
            rate = project_rate(optimizer, args.data, args.steps, args.repeats, threads)
            rows.append((f"project trainer ({name} tables)", 1, threads, rate))
    for nproc, threads in sorted({(1, 1), (1, cores), (2, max(1, cores // 2))}):
        measured = torchrec_rate(nproc, threads, args.data, args.steps, args.repeats, args.out.parent)
        kind = measured["optimizer"].split()[0]
        rows.append((f"TorchRec DMP (fused {kind} tables)", nproc, threads, measured["steps_per_s"]))
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()})",
        "load_average_1min_at_end": None,
        "config": str(EXAMPLE.relative_to(ROOT)),
        "data": str(args.data),
        "batch_size": BATCH,
        "steps": args.steps,
        "repeats": args.repeats,
        "rows": [
            {"engine": name, "processes": n, "threads_per_process": t, "steps_per_s": r, "samples_per_s": r * 256}
            for name, n, t, r in rows
        ],
    }
    width = max(len(name) for name, *_ in rows)
    print(f"{'engine':<{width}}  processes  threads  steps/s  samples/s")
    for name, n, t, rate in rows:
        print(f"{name:<{width}}  {n:9}  {t:7}  {rate:7.2f}  {rate * 256:9,.0f}")
    if not args.skip_must_show:
        report["must_show"] = must_show(args.data)
        shown = report["must_show"]
        print(
            f"must-show: val AUC project {shown['project']['val_auc']:.4f}, torchrec --nproc 2 "
            f"{shown['torchrec']['val_auc']:.4f} (gap {shown['auc_gap']:+.4f}); tables per rank "
            f"{shown['torchrec']['tables_per_rank']}; {'PASS' if shown['passes'] else 'FAIL'}"
        )
    report["load_average_1min_at_end"] = os.getloadavg()[0]
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
