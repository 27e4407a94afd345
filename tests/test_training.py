from __future__ import annotations

import itertools

import pytest
import torch
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.mixers import ConfigError, ModelConfig, analytic_cost, build_model
from unimixer_plan.plan_config import FIDELITY_PRESETS
from unimixer_plan.training.metrics import logloss, roc_auc
from unimixer_plan.training.trainer import TrainSettings, evaluate

from tests.conftest import small_config


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


def test_training_is_deterministic_by_seed_and_records_every_epoch(synthetic):
    config = small_config("unimixing_lite", **synthetic.schema)
    settings = TrainSettings(max_epochs=3, val_subsample=2_000)
    first = evaluate(config, synthetic, fidelity=4_000, seed=7, settings=settings)
    second = evaluate(config, synthetic, fidelity=4_000, seed=7, settings=settings)
    assert first.ok and first.distinct_samples == 4_000
    assert first.val_logloss == second.val_logloss and first.val_auc == second.val_auc
    assert [c.epoch for c in first.history] == list(range(1, first.epochs + 1))
    assert first.samples_seen == first.epochs * 4_000 == first.history[-1].samples_seen
    other = evaluate(config, synthetic, fidelity=4_000, seed=8, settings=settings)
    assert other.val_logloss != first.val_logloss


def test_fidelity_is_distinct_rows_capped_by_the_data(synthetic):
    config = small_config("rankmixer", **synthetic.schema)
    result = evaluate(config, synthetic, fidelity=10**9, settings=TrainSettings(max_epochs=1, batch_size=4096))
    assert result.distinct_samples == len(synthetic.train) == result.samples_seen


def test_result_is_the_best_epoch_not_the_last(synthetic, monkeypatch):
    # Validation is scripted: epoch k scores SCRIPT[k - 1], and any later call scores whatever
    # the weights it sees scored when they were first validated. The result must be epoch 3's.
    script = [0.60, 0.55, 0.50, 0.52, 0.53, 0.54]
    scores: dict[float, float] = {}

    def scripted(model, split, batch_size, rows=None):
        key = float(sum(p.detach().double().sum() for p in model.parameters()))
        if key not in scores:
            scores[key] = script[len(scores)]
        return scores[key], 1.0 - scores[key]

    monkeypatch.setattr("unimixer_plan.training.trainer.validate", scripted)
    config = small_config("attention", **synthetic.schema)
    settings = TrainSettings(max_epochs=6, patience=10, ema_decay=0.0)
    result = evaluate(config, synthetic, fidelity=1_000, settings=settings)
    assert result.ok and result.epochs == 6
    assert [c.val_logloss for c in result.history] == script
    assert result.best_epoch == 3
    assert result.val_logloss == 0.50  # the restored weights are epoch 3's, not epoch 6's (0.54)


def test_early_stopping_after_patience_epochs_without_improvement(synthetic):
    config = small_config("attention", **synthetic.schema)
    settings = TrainSettings(learning_rate=3e-2, max_epochs=12, patience=2, val_subsample=2_000)
    result = evaluate(config, synthetic, fidelity=3_000, settings=settings)
    assert result.ok and result.epochs < 12
    assert result.epochs == result.best_epoch + 2
    assert result.stop_reason == "early stop: no improvement in 2 epochs"


def test_reporter_can_stop_a_trial_after_an_epoch(synthetic):
    config = small_config("rankmixer", **synthetic.schema)
    result = evaluate(config, synthetic, fidelity=3_000, reporter=lambda c: c.epoch >= 2)
    assert result.status == "stopped" and result.epochs == 2 and len(result.history) == 2
    assert result.val_logloss == min(c.val_logloss for c in result.history)


def test_divergence_is_a_failed_result_not_an_exception(synthetic):
    config = small_config("attention", **synthetic.schema)
    result = evaluate(config, synthetic, fidelity=2_000, settings=TrainSettings(learning_rate=float("inf")))
    assert result.status == "failed" and "non-finite" in result.error


def test_schema_mismatch_is_a_config_error(synthetic):
    with pytest.raises(ConfigError, match=r"^num_dense=3: does not match the data's 13 dense fields"):
        evaluate(small_config("wukong"), synthetic, fidelity=10)
    with pytest.raises(ConfigError, match=r"^cardinalities="):
        evaluate(small_config("wukong", num_dense=13), synthetic, fidelity=10)


def test_temperature_anneals_in_the_first_epoch_then_stays_at_tau_end(synthetic, monkeypatch):
    from unimixer_plan.training import trainer

    seen, at_validation = [], []
    original = build_model

    def spy(config):
        model = original(config)
        real = model.set_temperature
        model.set_temperature = lambda tau: seen.append(tau) or real(tau)
        return model

    real_validate = trainer._LocalEngine.validate

    def validate_spy(engine, rows):
        at_validation.append(len(seen) - 1)  # the temperature last set is the one scored
        return real_validate(engine, rows)

    monkeypatch.setattr("unimixer_plan.training.trainer.build_model", spy)
    monkeypatch.setattr(trainer._LocalEngine, "validate", validate_spy)
    config = small_config("unimixer", **synthetic.schema)
    settings = TrainSettings(batch_size=512, max_epochs=3, patience=10, anneal_epochs=1.0)
    evaluate(config, synthetic, fidelity=512 * 11, settings=settings)
    steps = [tau for i, tau in enumerate(seen) if i not in at_validation]
    assert len(steps) == 33 and steps[0] == 1.0
    assert all(a > b for a, b in itertools.pairwise(steps[:12]))  # linear over the first epoch's 11 steps
    assert abs(steps[5] - (1.0 - 0.95 * 5 / 11)) < 1e-9
    assert steps[11:] == [0.05] * 22  # every later step trains at tau_end
    # every epoch, the first included, is scored at tau_end: the function the restored weights deliver
    assert len(at_validation) == 4 and [seen[i] for i in at_validation] == [0.05] * 4


def test_learning_rate_warms_up_then_decays(synthetic, monkeypatch):
    rates = []
    original = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    config = small_config("rankmixer", **synthetic.schema)
    settings = TrainSettings(
        batch_size=500, learning_rate=1e-3, warmup_steps=4, max_epochs=3, patience=10, lr_decay=0.5
    )
    evaluate(config, synthetic, fidelity=4_000, settings=settings)
    assert rates[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert rates[7] == pytest.approx(1e-3)
    assert max(rates[8:]) <= 0.5e-3 + 1e-12  # epoch 2 runs at most at lr_decay x the peak


@pytest.mark.slow
def test_a_larger_proxy_beats_a_smaller_one_at_the_default_fidelity():
    # The ladder's premise: trained to convergence on the same distinct rows, capacity shows.
    # The smallest and largest proxy sizes of the default 2e9 plan's ladder (about 3e4 and 2e6
    # FLOPs/sample), on the default synthetic data and fidelity.
    fidelity = FIDELITY_PRESETS["quick"]
    data = load_data(DataSpec(), train_rows=fidelity)
    common = {"family": "unimixing_lite", "ffn_ratio": 2, **data.schema}
    small = ModelConfig(n_tokens=4, d_model=16, heads=2, rank=4, bases=2, depth=1, embed_dim=8, **common)
    large = ModelConfig(n_tokens=16, d_model=64, heads=4, rank=16, bases=4, depth=2, embed_dim=16, **common)
    assert analytic_cost(large).flops > 50 * analytic_cost(small).flops
    small_result = evaluate(small, data, fidelity)
    large_result = evaluate(large, data, fidelity)
    assert small_result.ok and large_result.ok
    # seed-to-seed spread of either is about 0.001 (benchmarks/baselines_bench.py)
    assert large_result.val_logloss < small_result.val_logloss - 0.003
    assert large_result.val_logloss > data.noise_floor_logloss  # nothing beats the planted model
