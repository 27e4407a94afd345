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
