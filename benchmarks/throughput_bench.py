"""Training throughput per family at matched FLOPs, against this CPU's measured matmul peak.

For each family at three matched budgets (``families_bench.matched``: T = 16, depth 2, ffn x2, the
valid width whose analytic FLOPs are closest), training steps (forward, backward, Adam) are timed
over ``--steps`` steps after warm-up, three times, and the median kept; achieved GFLOP/s = 3 x
FLOPs/sample x samples/s (the cost convention's training multiplier). The peak is torch.mm on the
shape that dominates the model's FLOPs, (batch x T, d_model) @ (d_model, 2 d_model), and on a
1024^3 square, same threads. All families run in one process, one after another, so that their
ratios share the machine's load. Then an ablation of UniMixer at 1e7 (``ablation``): the same steps
with RMSNorm on layer_norm's fused kernel, and with the Sinkhorn matrices built once. Writes JSON
and a Markdown table.

    .venv/bin/python benchmarks/throughput_bench.py [--threads 1] [--steps 10] [--out bench-out/throughput]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from bench_io import run_meta, write_results

sys.path.insert(0, str(Path(__file__).parent))
from families_bench import matched
from unimixer_plan.mixers import analytic_cost, build_model, capped_criteo_cardinalities, list_searchable
from unimixer_plan.profiling import example_inputs

BUDGETS = (2.5e6, 1e7, 4e7)
BATCH = 512
REPEATS = 3
ABLATION_BUDGET = 1e7
SCHEMA = {"num_dense": 13, "cardinalities": capped_criteo_cardinalities(1000)}


def matmul_gflops(m: int, k: int, n: int, repeats: int = 20) -> float:
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * m * k * n * repeats / (time.perf_counter() - start) / 1e9


def step_gflops(family: str, budget: float, steps: int) -> dict[str, Any]:
    config = matched(family, budget, SCHEMA)
    model = build_model(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    dense, sparse = example_inputs(config, BATCH)
    labels = torch.randint(0, 2, (BATCH,)).float()

    def train(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(dense, sparse), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return time.perf_counter() - start

    train(2)  # warm-up
    elapsed = statistics.median(train(steps) for _ in range(REPEATS))
    flops = analytic_cost(config).flops
    shape_peak = matmul_gflops(BATCH * config.n_tokens, config.d_model, config.ffn_ratio * config.d_model)
    achieved = 3 * flops * steps * BATCH / elapsed / 1e9
    return {
        "family": family,
        "budget": budget,
        "d_model": config.d_model,
        "flops_per_sample": flops,
        "samples_per_s": round(steps * BATCH / elapsed, 1),
        "gflops_per_s": round(achieved, 2),
        "matmul_gflops_at_shape": round(shape_peak, 2),
        "share_of_shape_peak": round(achieved / shape_peak, 3),
    }


def ablation(budget: float, steps: int) -> dict[str, float]:
    """Where UniMixer's GFLOP/s go, at one budget: as built; with RMSNorm computed by layer_norm's fused
    kernel (a different function, the same shape of work: timing only); with the Sinkhorn matrices
    built once instead of every step (timing only)."""
    from unimixer_plan.mixers import layers, sinkhorn

    figures = {"rankmixer": step_gflops("rankmixer", budget, steps)["gflops_per_s"]}
    figures["unimixer"] = step_gflops("unimixer", budget, steps)["gflops_per_s"]
    rms_forward, build = layers.RMSNorm.forward, sinkhorn.SinkhornMixing.matrices
    try:
        layers.RMSNorm.forward = lambda self, x: torch.nn.functional.layer_norm(
            x, (x.shape[-1],), self.weight, None, self.eps
        )
        figures["unimixer, layer_norm kernel"] = step_gflops("unimixer", budget, steps)["gflops_per_s"]
        layers.RMSNorm.forward = rms_forward
        built: dict[int, tuple[torch.Tensor, ...]] = {}

        def built_once(self: Any) -> tuple[torch.Tensor, ...]:
            if id(self) not in built:
                with torch.no_grad():
                    built[id(self)] = self.build_matrices()
            return built[id(self)]

        sinkhorn.SinkhornMixing.matrices = built_once
        figures["unimixer, Sinkhorn built once"] = step_gflops("unimixer", budget, steps)["gflops_per_s"]
    finally:
        layers.RMSNorm.forward, sinkhorn.SinkhornMixing.matrices = rms_forward, build
    return figures


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    rank = {r["budget"]: r["gflops_per_s"] for r in rows if r["family"] == "rankmixer"}
    lines = [
        f"Training throughput ({meta['date']}, {meta['machine']}, {meta['threads']} thread(s), batch {BATCH}); "
        f"torch.mm 1024^3: {meta['square_matmul_gflops']:.1f} GFLOP/s",
        "",
        "| family | FLOPs/sample | d_model | samples/s | GFLOP/s | mm at its shape | share of it | x RankMixer |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['family']} | {r['flops_per_sample']:.3g} | {r['d_model']} | {r['samples_per_s']:,.0f} "
            f"| {r['gflops_per_s']:.2f} | {r['matmul_gflops_at_shape']:.2f} | {r['share_of_shape_peak']:.0%} "
            f"| {r['gflops_per_s'] / rank[r['budget']]:.2f} |"
        )
    ablated = meta["ablation"]["gflops_per_s"]
    lines += [
        "",
        f"Where UniMixer's time goes at {meta['ablation']['budget']:.0e} FLOPs/sample (GFLOP/s, x RankMixer):",
    ]
    lines += [f"- {name}: {value:.1f} ({value / ablated['rankmixer']:.2f}x)" for name, value in ablated.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench-out/throughput"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = [step_gflops(f, b, args.steps) for b in BUDGETS for f in list_searchable()]
    ablated = ablation(ABLATION_BUDGET, args.steps)
    meta = run_meta(
        threads=args.threads,
        square_matmul_gflops=round(matmul_gflops(1024, 1024, 1024, 10), 2),
        ablation={"budget": ABLATION_BUDGET, "gflops_per_s": ablated},
    )
    text = markdown(rows, meta)
    write_results(args.out, "throughput", {"meta": meta, "rows": rows}, text)
    print(text)


if __name__ == "__main__":
    main()
