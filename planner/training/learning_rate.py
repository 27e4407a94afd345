"""The learning rate that fits a model: a rule in its size.

Adam's best rate falls as a model grows: the update of a weight matrix grows with its fan-in (width),
and deeper stacks add more residual updates. Forward FLOPs per sample grow with both (about T x D^2 x
depth), so the rule is a power law in them:

    lr = BASE_LR * (flops / REFERENCE_FLOPS) ** -FLOPS_EXPONENT, clipped to [MIN_LR, MAX_LR]

Fitted 2026-12-02 to the best rate of a sweep (1e-4 .. 1e-2, 2 seeds, 16k rows of the synthetic
default, UniMixing-Lite) at three sizes: 1.4e5 FLOPs/sample (best 3e-3), 2.1e6 (3e-4 .. 1e-3, flat)
and 2.4e7 (3e-4); the former rule, 1e-3 * sqrt(64 / d_model), gave the smallest of them 1.4e-3 and
lost 0.055 AUC there. ``benchmarks/lr_bench.py`` checks the rule on three other sizes. Baselines
(no width) take BASE_LR; the plan sweeps theirs anyway.
"""

from __future__ import annotations

from unimixer_plan.mixers import ModelConfig, analytic_cost

BASE_LR = 3e-3
REFERENCE_FLOPS = 1e5
FLOPS_EXPONENT = 0.45
MIN_LR, MAX_LR = 1e-4, 1e-2


def learning_rate_for(config: ModelConfig) -> float:
    if not getattr(config, "d_model", None) or not getattr(config, "depth", None):
        return BASE_LR
    flops = analytic_cost(config).flops
    return min(MAX_LR, max(MIN_LR, BASE_LR * (flops / REFERENCE_FLOPS) ** -FLOPS_EXPONENT))
