from __future__ import annotations

import pytest
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.training.batch_size import MAX_BATCH, MIN_BATCH, STEPS_PER_EPOCH, batch_size_for
from unimixer_plan.training.trainer import TrainSettings, evaluate

from tests.conftest import small_config


@pytest.mark.parametrize(
    ("rows", "batch"),
    [(16_384, 64), (65_536, 256), (262_144, 1024), (100_000, 512), (8_000, MIN_BATCH), (10**9, MAX_BATCH), (0, 64)],
)
def test_the_batch_keeps_about_steps_per_epoch_steps_within_bounds(rows, batch):
    assert batch_size_for(rows) == batch
    if MIN_BATCH < batch < MAX_BATCH:
        assert STEPS_PER_EPOCH / 2**0.5 <= rows / batch <= STEPS_PER_EPOCH * 2**0.5


def test_the_trainer_uses_the_rule_unless_a_batch_is_given():
    data = load_data(DataSpec(seed=0, vocab_cap=200, synthetic_val_rows=512), train_rows=16_384)
    config = small_config("rankmixer", **data.schema)
    ruled = evaluate(config, data, 16_384, settings=TrainSettings(max_epochs=1))
    assert ruled.batch_size == 64 and ruled.samples_seen == 16_384
    fixed = evaluate(config, data, 16_384, settings=TrainSettings(max_epochs=1, batch_size=1024))
    assert fixed.batch_size == 1024


def test_the_learning_rate_falls_with_model_size_as_the_rule_says_and_stays_clipped():
    from unimixer_plan.mixers import ModelConfig, analytic_cost
    from unimixer_plan.training.learning_rate import BASE_LR, MAX_LR, MIN_LR, REFERENCE_FLOPS, learning_rate_for

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
