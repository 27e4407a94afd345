from __future__ import annotations

import itertools

import pytest
import torch
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.mixers import ConfigError, ModelConfig, build_model
from unimixer_plan.training.metrics import logloss, roc_auc
from unimixer_plan.training.trainer import TrainSettings, evaluate

from tests.conftest import SHARED_CRITEO, small_config


@pytest.fixture(scope="module")
def synthetic():
    return load_data(DataSpec(seed=0, vocab_cap=1_000, synthetic_val_rows=8_192), train_rows=60_000)


def test_auc_matches_the_pairwise_definition_with_ties():
    generator = torch.Generator().manual_seed(1)
    labels = (torch.rand(300, generator=generator) < 0.3).float().numpy()
    scores = torch.randint(0, 20, (300,), generator=generator).float().numpy()  # many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairwise = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert abs(roc_auc(labels, scores) - pairwise) < 1e-12
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert abs(logloss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0])) - 0.693147) < 1e-6


def test_training_is_deterministic_by_seed_and_records_checkpoints(synthetic):
    config = small_config("unimixing_lite", **synthetic.schema)
    first = evaluate(config, synthetic, fidelity=4_000, seed=7, checkpoints=(2_000,))
    second = evaluate(config, synthetic, fidelity=4_000, seed=7, checkpoints=(2_000,))
    assert first.ok and first.samples == 4_000 and first.steps == 8
    assert first.val_logloss == second.val_logloss and first.val_auc == second.val_auc
    assert [c.samples for c in first.history] == [2_048, 4_000]
    other = evaluate(config, synthetic, fidelity=4_000, seed=8)
    assert other.val_logloss != first.val_logloss


def test_reporter_can_stop_a_trial_early(synthetic):
    config = small_config("rankmixer", **synthetic.schema)
    result = evaluate(
        config, synthetic, fidelity=6_000, checkpoints=(1_000, 3_000), reporter=lambda c: c.samples > 2_000
    )
    assert result.ok and result.samples == 3_072 and len(result.history) == 2


def test_divergence_is_a_failed_result_not_an_exception(synthetic):
    config = small_config("attention", **synthetic.schema)
    result = evaluate(config, synthetic, fidelity=2_000, settings=TrainSettings(learning_rate=float("inf")))
    assert result.status == "failed" and "non-finite" in result.error


def test_schema_mismatch_is_a_config_error(synthetic):
    with pytest.raises(ConfigError, match=r"^num_dense=3: does not match the data's 13 dense fields"):
        evaluate(small_config("wukong"), synthetic, fidelity=10)
    with pytest.raises(ConfigError, match=r"^cardinalities="):
        evaluate(small_config("wukong", num_dense=13), synthetic, fidelity=10)


def test_temperature_anneals_to_tau_end(synthetic, monkeypatch):
    seen = []
    original = build_model

    def spy(config):
        model = original(config)
        real = model.set_temperature
        model.set_temperature = lambda tau: seen.append(tau) or real(tau)
        return model

    monkeypatch.setattr("unimixer_plan.training.trainer.build_model", spy)
    config = small_config("unimixer", **synthetic.schema)
    evaluate(config, synthetic, fidelity=512 * 11, settings=TrainSettings(batch_size=512, anneal_fraction=1.0))
    assert seen[0] == 1.0 and len(seen) == 11
    assert abs(seen[5] - 0.525) < 1e-9  # linear from 1.0 towards 0.05 over the 11 steps
    assert seen[-1] == 0.05  # the last step trains at tau_end
    assert all(a > b for a, b in itertools.pairwise(seen))


@pytest.mark.slow
def test_larger_model_reaches_lower_logloss_on_synthetic_data(synthetic):
    common = {"embed_dim": 8, **synthetic.schema}
    tiny = ModelConfig(
        family="unimixing_lite",
        n_tokens=2,
        d_model=4,
        heads=1,
        rank=1,
        bases=1,
        depth=1,
        ffn_ratio=1,
        **{**common, "embed_dim": 4},
    )
    larger = ModelConfig(family="unimixing_lite", n_tokens=8, d_model=32, heads=2, rank=8, bases=2, depth=2, **common)
    small_result = evaluate(tiny, synthetic, fidelity=60_000)
    large_result = evaluate(larger, synthetic, fidelity=60_000)
    assert small_result.ok and large_result.ok
    assert large_result.val_logloss < small_result.val_logloss - 0.01
    assert large_result.val_logloss > synthetic.noise_floor_logloss  # nothing beats the planted model


@pytest.mark.skipif(not SHARED_CRITEO.is_dir(), reason="real Criteo samples not found at ../shared/data/criteo")
def test_unimixing_lite_on_real_criteo_reaches_auc_072():
    data = load_data(DataSpec(path=str(SHARED_CRITEO / "criteo_sampled_data_10k.csv"), val_fraction=0.2, min_count=10))
    config = ModelConfig(
        family="unimixing_lite", n_tokens=8, d_model=32, heads=2, rank=8, bases=2, depth=2, embed_dim=8, **data.schema
    )
    result = evaluate(config, data, fidelity=3 * len(data.train), settings=TrainSettings(batch_size=256))
    assert result.ok
    assert result.val_auc >= 0.72, result
