"""Learning-rate rule against a per-size sweep.

For three UniMixing-Lite sizes (small to large width and depth; not the sizes the rule was fitted on,
see ``unimixer_plan.training.learning_rate``), train at every learning rate of a grid and at the
rule's rate (``learning_rate_for``), with the default trainer, on ``--fidelity`` rows of the synthetic
default. Reports the best swept AUC, the rule's AUC and their gap per size (goal: the rule within
0.002 AUC of the sweep), averaged over ``--seeds`` seeds.

    .venv/bin/python benchmarks/lr_bench.py [--seeds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace

import torch
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.mixers import ModelConfig, analytic_cost
from unimixer_plan.plan_config import FIDELITY_PRESETS
from unimixer_plan.training.learning_rate import learning_rate_for
from unimixer_plan.training.trainer import TrainSettings, evaluate

GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
SIZES = {  # 2.7e4, 1.5e6 and 7.9e6 FLOPs/sample
    "small": {"n_tokens": 4, "d_model": 16, "heads": 2, "rank": 4, "bases": 2, "depth": 1, "embed_dim": 8},
    "medium": {"n_tokens": 8, "d_model": 64, "heads": 4, "rank": 16, "bases": 2, "depth": 3, "embed_dim": 16},
    "large": {"n_tokens": 16, "d_model": 128, "heads": 8, "rank": 32, "bases": 4, "depth": 2, "embed_dim": 32},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--fidelity", type=int, default=2 * FIDELITY_PRESETS["quick"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = load_data(DataSpec(), train_rows=args.fidelity)
    rows = []
    for name, knobs in SIZES.items():
        config = ModelConfig(family="unimixing_lite", ffn_ratio=2, **knobs, **data.schema)
        rule = learning_rate_for(config)

        def auc_at(lr: float, config: ModelConfig = config, name: str = name) -> float:
            settings = replace(TrainSettings(), learning_rate=lr)
            runs = [evaluate(config, data, args.fidelity, seed=s, settings=settings) for s in range(args.seeds)]
            auc = statistics.mean(r.val_auc for r in runs)
            # Progress on stderr: a full run is about an hour on 2 cores, and a partial one still informs.
            print(f"{name}: lr {lr:g} -> AUC {auc:.4f}", file=sys.stderr, flush=True)
            return auc

        swept = {lr: auc_at(lr) for lr in GRID}
        best_lr = max(swept, key=swept.get)
        rule_auc = swept[rule] if rule in swept else auc_at(rule)
        rows.append(
            {
                "size": name,
                "d_model": config.d_model,
                "depth": config.depth,
                "flops": analytic_cost(config).flops,
                "best_lr": best_lr,
                "best_auc": swept[best_lr],
                "rule_lr": rule,
                "rule_auc": rule_auc,
                "gap": swept[best_lr] - rule_auc,
                "sweep": {f"{lr:g}": round(auc, 4) for lr, auc in swept.items()},
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| size | d_model | depth | FLOPs | best swept lr | best AUC | rule lr | rule AUC | gap |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['size']} | {r['d_model']} | {r['depth']} | {r['flops']:,} | {r['best_lr']:g} | "
            f"{r['best_auc']:.4f} | {r['rule_lr']:.2g} | {r['rule_auc']:.4f} | {r['gap']:+.4f} |"
        )


if __name__ == "__main__":
    main()
