"""The learning rate that fits a model: a rule in width and depth.

Adam's best rate falls as models widen (the update of a weight matrix grows with its fan-in)
and as they deepen (more residual branches add up). The rule is

    lr = BASE_LR * (REFERENCE_WIDTH / width) ** WIDTH_EXPONENT * (REFERENCE_DEPTH / depth) ** DEPTH_EXPONENT

clipped to [MIN_LR, MAX_LR]; baselines without a width use BASE_LR. The constants were fitted to a
per-size sweep (benchmarks/lr_bench.py) and the benchmark reports how close the rule comes to the
best rate of the sweep at each size.
"""

from __future__ import annotations

from unimixer_plan.mixers import ModelConfig

BASE_LR = 1e-3
REFERENCE_WIDTH = 64
REFERENCE_DEPTH = 2
WIDTH_EXPONENT = 0.5
DEPTH_EXPONENT = 0.0
MIN_LR, MAX_LR = 1e-4, 1e-2


def learning_rate_for(config: ModelConfig) -> float:
    width = getattr(config, "d_model", None)
    depth = getattr(config, "depth", None)
    if not width or not depth:
        return BASE_LR
    lr = BASE_LR * (REFERENCE_WIDTH / width) ** WIDTH_EXPONENT * (REFERENCE_DEPTH / depth) ** DEPTH_EXPONENT
    return min(MAX_LR, max(MIN_LR, lr))
