"""Families at a few MFLOPs/sample against the lr and fm baselines, same trainer, same rows.

On the shared real Criteo 10k sample (8:1:1 by file order) and on the synthetic default (the
plan's default fidelity of distinct rows), every family listed trains with the default trainer
for ``--seeds`` seeds, and lr and fm as a plan trains them (``train_baselines``: the same trainer,
each at its best learning rate of a small sweep on validation); the table gives mean and spread
(min..max) of validation AUC and logloss, each family's mean gain over fm and lr, and the same
models' test AUC (rows that chose nothing: not the learning rate, not the epoch).

    .venv/bin/python benchmarks/baselines_bench.py [--seeds 3] [--families unimixer unimixing_lite] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.mixers import ModelConfig, analytic_cost
from unimixer_plan.plan_config import FIDELITY_PRESETS
from unimixer_plan.training.baselines import train_baselines
from unimixer_plan.training.trainer import TrainSettings, evaluate

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_CRITEO = SHARED / "data" / "criteo" / "criteo_sampled_data_10k.csv"
# About 2 MFLOPs/sample each: the example UniMixing-Lite and shapes of the same cost.
SHAPES = {
    "unimixing_lite": {"n_tokens": 16, "d_model": 64, "heads": 4, "rank": 16, "bases": 4, "depth": 2},
    "unimixer": {"n_tokens": 16, "d_model": 64, "heads": 4, "depth": 2},
    "rankmixer": {"n_tokens": 16, "d_model": 64, "heads": 16, "depth": 2},
    "attention": {"n_tokens": 16, "d_model": 64, "heads": 4, "depth": 2},
    "wukong": {"n_tokens": 16, "d_model": 64, "rank": 16, "depth": 2},
}


def configs(schema: dict, families: list[str]) -> dict[str, ModelConfig]:
    return {f: ModelConfig(family=f, ffn_ratio=2, embed_dim=16, **SHAPES[f], **schema) for f in families}


def spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--families", nargs="+", default=["unimixing_lite", "unimixer"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--datasets", nargs="+", default=["criteo-10k", "synthetic"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    datasets = {}
    if SHARED_CRITEO.exists() and "criteo-10k" in args.datasets:
        datasets["criteo-10k"] = load_data(DataSpec(path=str(SHARED_CRITEO)))
    if "synthetic" in args.datasets:
        datasets["synthetic"] = load_data(DataSpec(), train_rows=FIDELITY_PRESETS["quick"])
    report = {}
    for name, data in datasets.items():
        rows = {}
        for family, config in configs(dict(data.schema), args.families).items():
            runs = [evaluate(config, data, len(data.train), seed=s, score_test=True) for s in range(args.seeds)]
            rows[family] = {
                "flops": analytic_cost(config).flops,
                "auc": spread([r.val_auc for r in runs]),
                "logloss": spread([r.val_logloss for r in runs]),
                "test_auc": spread([r.test.auc for r in runs]),
                "test_auc_se": runs[0].test.auc_se,
                "epochs": [r.epochs for r in runs],
            }
        tuned = [train_baselines(data, len(data.train), s, TrainSettings()) for s in range(args.seeds)]
        for baseline in ("fm", "lr"):
            runs = [by_family[baseline] for by_family in tuned]
            # The test score of each seed's selected rate: retrained at it (the sweep scored validation only).
            config = ModelConfig.from_dict(runs[0].model)
            tests = [
                evaluate(
                    config,
                    data,
                    len(data.train),
                    seed=s,
                    settings=TrainSettings(learning_rate=r.learning_rate),
                    score_test=True,
                ).test
                for s, r in enumerate(runs)
            ]
            rows[baseline] = {
                "flops": runs[0].flops,
                "auc": spread([r.val_auc for r in runs]),
                "logloss": spread([r.val_logloss for r in runs]),
                "test_auc": spread([t.auc for t in tests]),
                "test_auc_se": tests[0].auc_se,
                "epochs": [r.epochs for r in runs],
                "learning_rates": [r.learning_rate for r in runs],
            }
        for row in rows.values():
            row["auc_gain_over_fm"] = row["auc"]["mean"] - rows["fm"]["auc"]["mean"]
            row["auc_gain_over_lr"] = row["auc"]["mean"] - rows["lr"]["auc"]["mean"]
        report[name] = rows
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name, rows in report.items():
        print(f"\n{name} ({args.seeds} seeds)\n")
        print(
            "| family | FLOPs/sample | val AUC mean (min..max) | val logloss mean (min..max) | vs fm | vs lr "
            "| test AUC mean (min..max) ± se |"
        )
        print("| --- | ---: | --- | --- | ---: | ---: | --- |")
        for family, r in rows.items():
            auc, ll, test = r["auc"], r["logloss"], r["test_auc"]
            print(
                f"| {family} | {r['flops']:,} | {auc['mean']:.4f} ({auc['min']:.4f}..{auc['max']:.4f}) | "
                f"{ll['mean']:.4f} ({ll['min']:.4f}..{ll['max']:.4f}) | {r['auc_gain_over_fm']:+.4f} | "
                f"{r['auc_gain_over_lr']:+.4f} | {test['mean']:.4f} ({test['min']:.4f}..{test['max']:.4f}) "
                f"± {r['test_auc_se']:.4f} |"
            )


if __name__ == "__main__":
    main()
