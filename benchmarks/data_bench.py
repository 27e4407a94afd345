"""Benchmark the data layer on a full-size Criteo-format file, and the trainer on its cache.

Generates a Criteo-format TSV of ``--rows`` rows (default 45M, the Kaggle file's size; about 11 GB)
in a temporary folder under ``--tmp`` (never the repo; deleted at the end) by repeating the shared
10k sample rows and perturbing their categorical values: in each repetition a column's value is
replaced by a repetition-specific one with probability (real distinct - sample distinct) / 45.8M,
so the columns reach about the full data's cardinalities (C3 ~10M values, mostly rare). Reports:

- parse + encode rows/s into the cache (one ``load_data``), the cache's size on disk, and the peak
  RSS of that process (goal <= 4 GB); the second load's time (the cache hit: no parsing);
- training samples/s of examples/unimixing_lite.yaml (``--steps`` steps of batch 256, one epoch)
  from the cache, its page cache dropped first (cold), and from the same rows copied into memory;
- random-row gathers (100 batches of 256 over the whole training split) from the cold cache;
- as before: the reader's rows/s on ``--reader-rows`` rows, plain and gzip, and the generator's.

Each measurement runs in its own process, so each peak RSS is that step's.

    python benchmarks/data_bench.py [--rows 45000000] [--steps 400] [--tmp /tmp] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "criteo" / "criteo_sampled_data_10k.csv"
FULL_ROWS = 45_840_617
# Raw cardinalities of C1..C26 in the full Kaggle data (shared/data/README.md).
FULL_CARDINALITIES = (1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
                      5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572)  # fmt: skip
BATCH = 256
VAL_ROWS = 8_192  # validation rows of the training measurement (the trainer's per-epoch subsample)
GATHER_BATCHES = 100  # random batches over the whole cold training split: each row is a disk read


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def generate(path: Path, rows: int, seed: int = 0) -> float:
    """Write ``rows`` Criteo TSV rows; returns the seconds it took."""
    import pandas as pd

    start = time.perf_counter()
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    frame[frame.columns[1:14]] = frame[frame.columns[1:14]].apply(lambda c: c.str.replace(".0", "", regex=False))
    fields = frame.to_numpy(dtype=object)  # (9999, 40): label, I1..I13, C1..C26
    n = len(fields)
    rng = np.random.default_rng(seed)
    columns = []  # (field index, integer values, present mask, replacement probability)
    for j in range(26):
        values = fields[:, 14 + j]
        present = values != ""
        distinct = len(set(values[present]))
        p = max(0.0, (FULL_CARDINALITIES[j] - distinct) / FULL_ROWS)
        if p > 0:
            ints = np.array([int(v, 16) if v else 0 for v in values], dtype=np.uint64)
            columns.append((14 + j, ints, present, p))
    with path.open("w") as out:
        for rep, first in enumerate(range(0, rows, n)):
            block = fields.copy()
            for field, ints, present, p in columns:
                change = present & (rng.random(n) < p)
                if change.any():
                    salted = (ints[change] ^ np.uint64((rep * 0x9E3779B1 + field) & 0xFFFFFFFF)) & np.uint64(0xFFFFFFFF)
                    block[change, field] = [f"{v:08x}" for v in salted.tolist()]
            take = min(n, rows - first)
            out.write("\n".join("\t".join(row) for row in block[:take].tolist()))
            out.write("\n")
    return time.perf_counter() - start


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def drop_page_cache(folder: Path) -> None:
    """Evict the entry's pages, so that the next reads come from disk (clean pages only: sync first)."""
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def stage_encode(args: argparse.Namespace) -> dict:
    from unimixer_plan.data import DataSpec, load_data

    spec = DataSpec(path=args.file, cache_dir=args.cache_dir)
    start = time.perf_counter()
    data = load_data(spec)
    seconds = time.perf_counter() - start
    rows = len(data.train) + len(data.val) + len(data.test)
    return {
        "rows": rows,
        "encode_s": seconds,
        "encode_rows_per_s": rows / seconds,
        "cache_bytes": folder_bytes(Path(data.cache_path)),
        "cache_path": data.cache_path,
        "peak_rss_mb": peak_rss_mb(),
        "description": data.description,
        "max_cardinality": max(data.cardinalities),
    }


def stage_reload(args: argparse.Namespace) -> dict:
    from unimixer_plan.data import DataSpec, load_data

    start = time.perf_counter()
    data = load_data(DataSpec(path=args.file, cache_dir=args.cache_dir))
    return {"reload_s": time.perf_counter() - start, "reload_peak_rss_mb": peak_rss_mb(), "cache_hit": data.cache_path}


def stage_train(args: argparse.Namespace) -> dict:
    import torch
    from unimixer_plan.data import DataSpec, EncodedSplit, load_data
    from unimixer_plan.mixers import load_config
    from unimixer_plan.training.trainer import TrainSettings, evaluate

    data = load_data(DataSpec(path=args.file, cache_dir=args.cache_dir))
    fidelity = args.steps * BATCH

    def head(split: EncodedSplit, rows: int, copy: bool) -> EncodedSplit:
        parts = (split.dense[:rows], split.sparse[:rows], split.labels[:rows])
        return EncodedSplit(*(p.clone() if copy else p for p in parts))

    in_memory = args.source == "memory"
    if not in_memory:
        drop_page_cache(Path(data.cache_path))
    start = time.perf_counter()
    rows = data.train if not in_memory else head(data.train, fidelity, copy=True)
    val = head(data.val, VAL_ROWS, copy=in_memory)
    subset = type(data)(**{**data.__dict__, "train": rows, "val": val, "test": val})
    setup_s = time.perf_counter() - start
    config = load_config(ROOT / "examples" / "unimixing_lite.yaml").replace(**data.schema)
    settings = TrainSettings(max_epochs=1, batch_size=BATCH, val_subsample=VAL_ROWS)
    result = evaluate(config, subset, fidelity=fidelity, settings=settings)
    out = {
        f"train_{args.source}_samples_per_s": result.samples_seen / result.wall_time_s,
        f"train_{args.source}_setup_s": setup_s,
        f"train_{args.source}_peak_rss_mb": peak_rss_mb(),
        f"train_{args.source}_status": result.status,
    }
    if not in_memory:
        drop_page_cache(Path(data.cache_path))
        generator = torch.Generator().manual_seed(0)
        batches = min(args.steps, GATHER_BATCHES)
        start = time.perf_counter()
        for _ in range(batches):
            index = torch.randint(len(data.train), (BATCH,), generator=generator)
            data.train.dense[index], data.train.sparse[index], data.train.labels[index]
        out["gather_cold_cache_rows_per_s"] = batches * BATCH / (time.perf_counter() - start)
    return out


def stage_small(args: argparse.Namespace) -> dict:
    """The reader on a small file, plain and gzip, and the synthetic generator."""
    from unimixer_plan.data import CRITEO_SCHEMA
    from unimixer_plan.data.reader import read_table
    from unimixer_plan.data.synthetic import SyntheticCriteo

    out = {}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        plain, packed = Path(tmp) / "criteo.tsv", Path(tmp) / "criteo.tsv.gz"
        generate(plain, args.reader_rows)
        packed.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=6))
        for name, path in (("plain", plain), ("gzip", packed)):
            start = time.perf_counter()
            read_table(path, CRITEO_SCHEMA)
            out[f"reader_{name}_rows_per_s"] = args.reader_rows / (time.perf_counter() - start)
    generator = SyntheticCriteo(seed=0)
    start = time.perf_counter()
    generator.generate(args.reader_rows)
    out["synthetic_rows_per_s"] = args.reader_rows / (time.perf_counter() - start)
    return out


STAGES = {"encode": stage_encode, "reload": stage_reload, "train": stage_train, "small": stage_small}


def run_stage(stage: str, args: argparse.Namespace, **extra: str) -> dict:
    command = [sys.executable, __file__, "--stage", stage, "--steps", str(args.steps), "--tmp", args.tmp]
    command += ["--reader-rows", str(args.reader_rows)]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", value]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"stage {stage} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"[{stage}] {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=45_000_000, help="rows of the generated file")
    parser.add_argument("--steps", type=int, default=400, help="training steps (batch 256) per measurement")
    parser.add_argument("--reader-rows", type=int, default=100_000, help="rows of the small reader benchmark")
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="folder for the generated file and cache")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    parser.add_argument("--source", choices=("cache", "memory"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(STAGES[args.stage](args)))
        return
    if not SAMPLE.is_file():
        raise SystemExit(f"the shared Criteo sample is missing: {SAMPLE}")
    results: dict = {"rows_requested": args.rows}
    with tempfile.TemporaryDirectory(prefix="data-bench-", dir=args.tmp) as tmp:
        file, cache = Path(tmp) / "criteo_full.tsv", Path(tmp) / "cache"
        results["generate_s"] = generate(file, args.rows)
        results["file_bytes"] = file.stat().st_size
        print(f"[generate] {results['file_bytes'] / 1e9:.1f} GB in {results['generate_s']:.0f} s", file=sys.stderr)
        paths = {"file": str(file), "cache_dir": str(cache)}
        results.update(run_stage("encode", args, **paths))
        results.update(run_stage("reload", args, **paths))
        for source in ("cache", "memory"):
            results.update(run_stage("train", args, source=source, **paths))
        shutil.rmtree(cache, ignore_errors=True)
    results.update(run_stage("small", args))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, value in results.items():
        print(f"{name:<38}{value:>16,.1f}" if isinstance(value, float | int) else f"{name:<38}{value}")


if __name__ == "__main__":
    main()
