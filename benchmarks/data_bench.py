"""Benchmark the data layer and the trainer.

Rows/s of the real reader (plain and gzip, on the shared Criteo sample repeated to
~100k rows in a temporary file, never in the repo), of the synthetic generator, and
training samples/s of the example config.

    python benchmarks/data_bench.py [--rows 100000] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path

import torch
from unimixer_plan.data import CRITEO_SCHEMA, DataSpec, load_data
from unimixer_plan.data.reader import read_table
from unimixer_plan.data.synthetic import SyntheticCriteo
from unimixer_plan.mixers import load_config
from unimixer_plan.training.trainer import TrainSettings, evaluate

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "criteo" / "criteo_sampled_data_10k.csv"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: dict[str, float] = {}
    if SAMPLE.is_file():
        lines = SAMPLE.read_text().splitlines(keepends=True)
        header, body = lines[0], lines[1:]
        text = header + "".join(body[i % len(body)] for i in range(args.rows))
        with tempfile.TemporaryDirectory() as tmp:
            plain, packed = Path(tmp) / "criteo.csv", Path(tmp) / "criteo.csv.gz"
            plain.write_text(text)
            packed.write_bytes(gzip.compress(text.encode(), compresslevel=6))
            rows["reader_plain_rows_per_s"] = args.rows / timed(lambda: read_table(plain, CRITEO_SCHEMA))
            rows["reader_gzip_rows_per_s"] = args.rows / timed(lambda: read_table(packed, CRITEO_SCHEMA))
            rows["load_and_encode_rows_per_s"] = args.rows / timed(lambda: load_data(DataSpec(path=str(plain))))
    generator = SyntheticCriteo(seed=0)
    rows["synthetic_rows_per_s"] = args.rows / timed(lambda: generator.generate(args.rows))
    config = load_config(ROOT / "examples" / "unimixing_lite.yaml")
    data = load_data(DataSpec(), train_rows=20_000)
    torch.set_num_threads(torch.get_num_threads())
    result = evaluate(config, data, fidelity=20_000, settings=TrainSettings(batch_size=512))
    rows["train_samples_per_s_example_config"] = result.samples / result.wall_time_s
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for name, value in rows.items():
        print(f"{name:<38}{value:>12,.0f}")


if __name__ == "__main__":
    main()
