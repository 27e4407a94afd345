"""Families at matched FLOPs: every searchable family at three budgets, three seeds, two datasets,
against the tuned lr and fm baselines trained by the same trainer on the same rows.

Each family's shape is ``baselines_bench.SHAPES`` (T = 16, depth 2, ffn x2, embed 16) with the
d_model whose analytic FLOPs/sample are closest to the budget. Budgets are 2x apart, so the paper's
claim -- UniMixing-Lite at least matches RankMixer at half the FLOPs -- is read off directly: Lite at
budget b against RankMixer at 2b. Reported per cell: validation logloss and AUC (mean and spread over
seeds), training samples/s and GFLOP/s (3 x FLOPs x samples seen / wall time, the runs' own clocks;
``--threads`` threads). Writes JSON and a Markdown table.

    .venv/bin/python benchmarks/families_bench.py [--seeds 3] [--threads 1] [--out bench-out/families]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from bench_io import run_meta, write_results

sys.path.insert(0, str(Path(__file__).parent))
from baselines_bench import SHAPES, SHARED_CRITEO
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.mixers import ConfigError, ModelConfig, analytic_cost, list_searchable
from unimixer_plan.plan_config import FIDELITY_PRESETS
from unimixer_plan.training.baselines import train_baselines
from unimixer_plan.training.trainer import TrainSettings, evaluate

BUDGETS = (5e5, 1e6, 2e6)


def matched(family: str, budget: float, schema: dict[str, Any]) -> ModelConfig:
    """The family's benchmark shape at the width whose FLOPs/sample are closest to ``budget``."""
    knobs = {k: v for k, v in SHAPES[family].items() if k != "d_model"}
    candidates = []
    for width in range(2, 2049, 2):  # every valid width: rankmixer's are multiples of T
        try:
            config = ModelConfig(family=family, d_model=width, ffn_ratio=2, embed_dim=16, **knobs, **schema)
            candidates.append((abs(analytic_cost(config).flops - budget), config))
        except ConfigError:
            continue
    return min(candidates, key=lambda c: c[0])[1]


def spread(values: list[float]) -> dict[str, float]:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return {"mean": statistics.mean(values), "min": min(values), "max": max(values), "sd": sd, "n": len(values)}


def cell(config: ModelConfig, runs: list[Any]) -> dict[str, Any]:
    flops = analytic_cost(config).flops
    rates = [r.samples_seen / r.wall_time_s for r in runs]
    return {
        "family": config.family,
        "flops": flops,
        "d_model": config.d_model,
        "logloss": spread([r.val_logloss for r in runs]),
        "auc": spread([r.val_auc for r in runs]),
        "samples_per_s": statistics.mean(rates),
        "gflops_per_s": statistics.mean(3 * flops * rate / 1e9 for rate in rates),
        "epochs": [r.epochs for r in runs],
    }


def run_dataset(data: Any, seeds: int, families: list[str]) -> dict[str, Any]:
    rows = len(data.train)
    cells = []
    for budget in BUDGETS:
        for family in families:
            config = matched(family, budget, dict(data.schema))
            runs = [evaluate(config, data, rows, seed=s) for s in range(seeds)]
            cells.append({"budget": budget, **cell(config, runs)})
            print(f"  {family} at {budget:.0e}: {cells[-1]['logloss']['mean']:.4f}", file=sys.stderr, flush=True)
    tuned = [train_baselines(data, rows, s, TrainSettings()) for s in range(seeds)]
    baselines = {}
    for name in ("lr", "fm"):
        runs = [by_family[name] for by_family in tuned]
        baselines[name] = {
            "flops": runs[0].flops,
            "logloss": spread([r.val_logloss for r in runs]),
            "auc": spread([r.val_auc for r in runs]),
        }
    return {"rows": rows, "cells": cells, "baselines": baselines}


def lite_vs_rankmixer(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Lite at b against RankMixer at 2b (logloss, lower is better): the paper's claim, per pair."""
    by = {(c["family"], c["budget"]): c for c in result["cells"]}
    pairs = []
    for low, high in itertools.pairwise(BUDGETS):
        lite, rank = by.get(("unimixing_lite", low)), by.get(("rankmixer", high))
        if lite and rank:
            a, b = lite["logloss"], rank["logloss"]
            se = (a["sd"] ** 2 / a["n"] + b["sd"] ** 2 / b["n"]) ** 0.5
            gap = a["mean"] - b["mean"]
            pairs.append({"lite_budget": low, "rankmixer_budget": high, "logloss_gap": gap, "gap_se": se})
    return pairs


def span(values: dict[str, float]) -> str:
    return f"{values['mean']:.4f} ({values['min']:.4f}..{values['max']:.4f})"


def markdown(report: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        f"Families at matched FLOPs ({meta['date']}, {meta['machine']}, {meta['seeds']} seeds, "
        f"{meta['threads']} thread(s)); validation logloss and AUC, mean (min..max)"
    ]
    for name, result in report.items():
        lines += [
            "",
            f"**{name}** ({result['rows']:,} training rows)",
            "",
            "| budget | family | FLOPs/sample | logloss | AUC | samples/s | GFLOP/s |",
            "| ---: | --- | ---: | --- | --- | ---: | ---: |",
        ]
        for c in result["cells"]:
            ll, auc = c["logloss"], c["auc"]
            lines.append(
                f"| {c['budget']:.0e} | {c['family']} | {c['flops']:.3g} | {span(ll)} | {span(auc)} "
                f"| {c['samples_per_s']:,.0f} | {c['gflops_per_s']:.2f} |"
            )
        for bname, b in result["baselines"].items():
            ll, auc = b["logloss"], b["auc"]
            lines.append(f"| - | {bname} (tuned) | {b['flops']:.3g} | {span(ll)} | {span(auc)} | | |")
        for p in lite_vs_rankmixer(result):
            gap, se = p["logloss_gap"], p["gap_se"]
            verdict = "holds" if gap <= 0 else "holds within 2 s.e." if gap <= 2 * se else "does not hold"
            lines.append(
                f"\nUniMixing-Lite at {p['lite_budget']:.0e} minus RankMixer at {p['rankmixer_budget']:.0e}: "
                f"{gap:+.4f} ± {se:.4f} logloss (s.e. over seeds): the claim {verdict}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--families", nargs="+", default=list(list_searchable()))
    parser.add_argument("--out", type=Path, default=Path("bench-out/families"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    datasets = {"synthetic default": lambda: load_data(DataSpec(), train_rows=FIDELITY_PRESETS["quick"])}
    if SHARED_CRITEO.exists():
        datasets["real Criteo 10k"] = lambda: load_data(DataSpec(path=str(SHARED_CRITEO)))
    report = {}
    for name, load in datasets.items():
        print(name, file=sys.stderr, flush=True)
        report[name] = run_dataset(load(), args.seeds, args.families)
        report[name]["lite_vs_rankmixer"] = lite_vs_rankmixer(report[name])
    meta = run_meta(seeds=args.seeds, threads=args.threads, budgets=list(BUDGETS))
    text = markdown(report, meta)
    write_results(args.out, "families", {"meta": meta, "datasets": report}, text)
    print(text)


if __name__ == "__main__":
    main()
