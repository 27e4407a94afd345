"""Benchmark the cost model and CPU training speed.

1. Analytic cost vs fvcore: configs per second and agreement on random configs.
2. Forward+backward samples/s on CPU per family at matched FLOPs (~1e7 FLOPs/sample).

    python benchmarks/cost_bench.py [--configs 40] [--json] [--out bench-out/cost]

With ``--out`` it also writes cost.json and cost.md (the benchmarks page's "cost" section).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from bench_io import run_meta, write_results
from unimixer_plan.mixers import ModelConfig, analytic_cost, build_model, capped_criteo_cardinalities, list_searchable
from unimixer_plan.profiling import example_inputs, measure_flops

MATCHED_FLOPS = 1e7
SCHEMA = {"num_dense": 13, "cardinalities": capped_criteo_cardinalities(1000)}


def random_config(family: str, rng: random.Random) -> ModelConfig:
    t = rng.choice([4, 8, 16])
    d = rng.choice([16, 32, 64])
    knobs: dict[str, int] = {}
    if family == "rankmixer":
        d = max(d, t) // t * t
        knobs["heads"] = t
    elif family in ("unimixer", "unimixing_lite", "attention"):
        knobs["heads"] = rng.choice([1, 2, 4])
    if family == "unimixing_lite":
        knobs |= {"rank": rng.randint(1, t * knobs["heads"]), "bases": rng.randint(1, 4)}
    if family == "wukong":
        knobs["rank"] = rng.randint(2, 16)
    return ModelConfig(family=family, n_tokens=t, d_model=d, depth=rng.randint(1, 3), **knobs, **SCHEMA)


def matched_config(family: str) -> ModelConfig:
    """T = 16, depth 2, the d_model whose FLOPs are closest to MATCHED_FLOPS."""
    knobs = {
        "rankmixer": {"heads": 16},
        "unimixer": {"heads": 4},
        "unimixing_lite": {"heads": 4, "rank": 16, "bases": 4},
        "attention": {"heads": 4},
        "wukong": {"rank": 16},
    }[family]
    step = 16
    candidates = [
        ModelConfig(family=family, n_tokens=16, d_model=d, depth=2, ffn_ratio=2, **knobs, **SCHEMA)
        for d in range(step, 513, step)
    ]
    return min(candidates, key=lambda c: abs(analytic_cost(c).flops - MATCHED_FLOPS))


def bench_cost(n_configs: int) -> list[dict]:
    rows = []
    for family in list_searchable():  # the baselines have no T/D/depth shape to sweep
        rng = random.Random(family)
        configs = [random_config(family, rng) for _ in range(n_configs)]
        start = time.perf_counter()
        analytic = [analytic_cost(c) for c in configs]
        analytic_s = time.perf_counter() - start
        start = time.perf_counter()
        measured = [measure_flops(build_model(c)) for c in configs]
        fvcore_s = time.perf_counter() - start
        exact = sum(a.flops == m[0] and a.step_flops == m[1] for a, m in zip(analytic, measured, strict=True))
        rows.append(
            {
                "family": family,
                "configs": n_configs,
                "analytic_configs_per_s": n_configs / analytic_s,
                "fvcore_configs_per_s": n_configs / fvcore_s,
                "speedup": fvcore_s / analytic_s,
                "exact_matches": exact,
            }
        )
    return rows


def bench_training(batch_size: int = 1024, steps: int = 10) -> list[dict]:
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    rows = []
    for family in list_searchable():  # the baselines have no T/D/depth shape to sweep
        config = matched_config(family)
        model = build_model(config)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        dense, sparse = example_inputs(config, batch_size)
        labels = torch.randint(0, 2, (batch_size,)).float()
        for step in range(steps + 2):  # two warm-up steps
            if step == 2:
                start = time.perf_counter()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(dense, sparse), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        elapsed = time.perf_counter() - start
        cost = analytic_cost(config)
        rows.append(
            {
                "family": family,
                "d_model": config.d_model,
                "flops_per_sample": cost.flops,
                "params_dense": cost.params_dense,
                "train_samples_per_s": steps * batch_size / elapsed,
                "achieved_gflops_per_s": 3 * cost.flops * steps * batch_size / elapsed / 1e9,
            }
        )
    return rows


def markdown(cost_rows: list[dict], train_rows: list[dict], meta: dict) -> str:
    lines = [
        f"Cost model ({meta['date']}, {meta['machine']}): analytic cost against fvcore on random configurations, "
        f"and training speed at ~{MATCHED_FLOPS:.0e} FLOPs/sample",
        "",
        "| family | analytic configs/s | fvcore configs/s | speed-up | exact (FLOPs and step FLOPs) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in cost_rows:
        lines.append(
            f"| {r['family']} | {r['analytic_configs_per_s']:,.0f} | {r['fvcore_configs_per_s']:.1f} "
            f"| {r['speedup']:,.0f}x | {r['exact_matches']}/{r['configs']} |"
        )
    lines += ["", "| family | d_model | FLOPs/sample | dense params | train samples/s | GFLOP/s |"]
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in train_rows:
        lines.append(
            f"| {r['family']} | {r['d_model']} | {r['flops_per_sample']:,} | {r['params_dense']:,} "
            f"| {r['train_samples_per_s']:,.0f} | {r['achieved_gflops_per_s']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    cost_rows, train_rows = bench_cost(args.configs), bench_training()
    meta = run_meta()
    if args.out is not None:
        payload = {"meta": meta, "cost": cost_rows, "training": train_rows}
        write_results(args.out, "cost", payload, markdown(cost_rows, train_rows, meta))
    if args.json:
        print(json.dumps({"cost": cost_rows, "training": train_rows}, indent=2))
        return
    print(markdown(cost_rows, train_rows, meta))


if __name__ == "__main__":
    main()
