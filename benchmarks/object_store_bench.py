"""How a plan's data reaches its trials through Ray's object store, and how large it can be.

A plan hands its encoded data to every trial with ``tune.with_parameters``: one ``ray.put`` on the
driver, one ``ray.get`` in each trial process. This measures, on a local Ray with two worker
processes (two trials at once, as a plan runs them on this machine), for datasets of growing size:

- ``put``: seconds for the driver to put the data;
- ``get``: seconds for a trial to get it and read every value once;
- ``private MB``: how much the trial process's private memory grew (USS: Private_Clean +
  Private_Dirty of /proc/PID/smaps_rollup) - a copy per trial shows here, shared memory does not;
- the largest size that went through (sizes in ascending order; an encoding that fails is not tried
  larger).

Two encodings of the same rows are compared: ``tensors`` (torch tensors pickled, as before
2026-12-05: each trial unpickles a private copy) and ``split`` (``EncodedSplit``, which pickles as
numpy arrays that Ray keeps out of band: each trial maps the node's one copy).

    .venv/bin/python benchmarks/object_store_bench.py [--sizes-mb 256 1024 4096 6144] [--out bench-out/object-store]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import unimixer_plan.ray_env  # noqa: F401  (Ray's environment before ray is imported)
from bench_io import run_meta, write_results

# isort: split
import numpy as np
import ray
import torch
from unimixer_plan.data.dataset import EncodedSplit

BYTES_PER_ROW = 13 * 4 + 26 * 8 + 4  # Criteo's 13 dense floats, 26 int64 ids, a float label


def private_mb() -> float:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:])
    return sum(int(fields[k].split()[0]) for k in ("Private_Clean", "Private_Dirty")) / 1024


@ray.remote(num_cpus=1)
class Trial:
    def read(self, refs: list) -> dict[str, float]:
        before = private_mb()  # a reference in a list is not resolved before the call: timed here
        start = time.perf_counter()
        payload = ray.get(refs[0])
        split = payload if isinstance(payload, EncodedSplit) else EncodedSplit(*payload)
        total = float(split.dense.sum()) + float(split.sparse.sum()) + float(split.labels.sum())
        return {"get_s": time.perf_counter() - start, "private_mb": private_mb() - before, "checksum": total}


def split_of(rows: int) -> EncodedSplit:
    generator = np.random.default_rng(0)
    return EncodedSplit(
        dense=torch.from_numpy(generator.random((rows, 13), dtype=np.float32)),
        sparse=torch.from_numpy(generator.integers(0, 10_000, (rows, 26), dtype=np.int64)),
        labels=torch.from_numpy((generator.random(rows) < 0.25).astype(np.float32)),
    )


def measure(size_mb: int, encoding: str) -> dict[str, object]:
    """One size and encoding, with two fresh trial processes (killed after: nothing carries over)."""
    split = split_of(size_mb * 2**20 // BYTES_PER_ROW)
    payload = split if encoding == "split" else (split.dense, split.sparse, split.labels)
    row: dict[str, object] = {"size_mb": size_mb, "encoding": encoding}
    trials = [Trial.remote() for _ in range(2)]
    try:
        start = time.perf_counter()
        ref = ray.put(payload)
        row["put_s"] = time.perf_counter() - start
        reads = ray.get([trial.read.remote([ref]) for trial in trials])  # both trials at once
        row["get_s"] = max(r["get_s"] for r in reads)
        row["private_mb"] = max(r["private_mb"] for r in reads)
        row["ok"] = True
        del ref
    except Exception as error:  # the limit is the result: record why it stopped
        row["ok"], row["error"] = False, f"{type(error).__name__}: {str(error).splitlines()[0][:400]}"
    finally:
        for trial in trials:
            ray.kill(trial)
    return row


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        f"Data through Ray's object store ({meta['date']}, {meta['machine']}, object store "
        f"{meta['object_store_mb']:,.0f} MB, 2 trial processes reading at once)",
        "",
        "| size | encoding | put | get + read (slowest trial) | private memory per trial |",
        "| ---: | --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        if r["ok"]:
            cells = [f"{r['put_s']:.2f} s", f"{r['get_s']:.2f} s", f"+{r['private_mb']:,.0f} MB"]
        else:
            cells = ["failed", r["error"], "-"]
        lines.append(f"| {r['size_mb']:,} MB | {r['encoding']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[256, 1024, 4096, 6144])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    meta = run_meta(object_store_mb=ray.available_resources().get("object_store_memory", 0) / 2**20)
    rows, failed = [], set()
    for size in args.sizes_mb:
        for encoding in ("tensors", "split"):
            if encoding in failed:  # larger still cannot go through
                continue
            rows.append(measure(size, encoding))
            print(json.dumps(rows[-1]), flush=True)
            if not rows[-1]["ok"]:
                failed.add(encoding)
    ray.shutdown()
    table = markdown(rows, meta)
    if args.out:
        write_results(args.out, "object-store", {"meta": meta, "rows": rows}, table)
    print(table)


if __name__ == "__main__":
    main()
