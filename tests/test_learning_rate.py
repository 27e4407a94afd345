"""The learning-rate rule: a power law in FLOPs/sample, clipped; baselines take the base rate."""

from __future__ import annotations

import pytest
from unimixer_plan.mixers import ModelConfig, analytic_cost
from unimixer_plan.training.learning_rate import BASE_LR, MAX_LR, MIN_LR, REFERENCE_FLOPS, learning_rate_for


def test_the_learning_rate_falls_with_model_size_as_the_rule_says_and_stays_clipped():
    common = {"family": "unimixing_lite", "n_tokens": 8, "heads": 4, "rank": 16, "bases": 2, "ffn_ratio": 2}
    small, wide, deep = (
        ModelConfig(**common, d_model=32, depth=1),
        ModelConfig(**common, d_model=128, depth=1),
        ModelConfig(**common, d_model=32, depth=4),
    )
    for config in (small, wide, deep):
        expected = BASE_LR * (analytic_cost(config).flops / REFERENCE_FLOPS) ** -0.45
        assert learning_rate_for(config) == pytest.approx(min(MAX_LR, max(MIN_LR, expected)))
    assert learning_rate_for(wide) < learning_rate_for(small) and learning_rate_for(deep) < learning_rate_for(small)
    huge = ModelConfig(**common, d_model=4096, depth=6)
    assert learning_rate_for(huge) == MIN_LR
    assert learning_rate_for(ModelConfig(family="lr", embed_dim=1)) == BASE_LR  # baselines: no size rule
