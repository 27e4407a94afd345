"""The floor a plan reports: lr and fm, tuned over learning rates by the candidates' trainer."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.training import baselines as baselines_module
from unimixer_plan.training.baselines import BASELINE_LEARNING_RATES, BaselineResult, train_baselines
from unimixer_plan.training.trainer import TrainResult, TrainSettings


@pytest.fixture(scope="module")
def tiny_data():
    return load_data(DataSpec(seed=0, vocab_cap=200, synthetic_val_rows=1_000), train_rows=2_000)


def scripted_evaluate(logloss_at: dict[float, float], calls: list[float]):
    def evaluate(config, data, fidelity, seed=0, settings=None, **kwargs):
        calls.append(settings.learning_rate)
        loss = logloss_at[settings.learning_rate]
        status = "ok" if math.isfinite(loss) else "failed"
        return TrainResult(
            status=status,
            val_logloss=loss,
            val_auc=0.7,
            distinct_samples=fidelity,
            samples_seen=fidelity,
            epochs=3,
            best_epoch=2,
            stop_reason="scripted",
            learning_rate=settings.learning_rate,
            wall_time_s=0.0,
            history=(),
        )

    return evaluate


def test_each_baseline_keeps_the_learning_rate_with_the_lowest_validation_logloss(tiny_data, monkeypatch):
    logloss_at = {1e-3: 0.50, 3e-3: 0.47, 1e-2: math.nan}  # the largest rate diverges
    calls: list[float] = []
    monkeypatch.setattr(baselines_module, "evaluate", scripted_evaluate(logloss_at, calls))
    results = train_baselines(tiny_data, fidelity=2_000, seed=0, settings=TrainSettings())
    assert calls == list(BASELINE_LEARNING_RATES) * 2
    for result in results.values():
        assert result.learning_rate == 3e-3 and result.val_logloss == 0.47
        assert result.swept_logloss["0.001"] == 0.50 and math.isnan(result.swept_logloss["0.01"])


def test_a_fixed_learning_rate_is_not_swept(tiny_data, monkeypatch):
    calls: list[float] = []
    monkeypatch.setattr(baselines_module, "evaluate", scripted_evaluate({5e-3: 0.5}, calls))
    results = train_baselines(tiny_data, fidelity=2_000, seed=0, settings=TrainSettings(learning_rate=5e-3))
    assert calls == [5e-3, 5e-3] and {r.learning_rate for r in results.values()} == {5e-3}


def test_baselines_really_train_and_read_back(tiny_data):
    settings = TrainSettings(max_epochs=1, val_subsample=500)
    results = train_baselines(tiny_data, fidelity=1_000, seed=0, settings=settings)
    assert set(results) == {"lr", "fm"}
    for result in results.values():
        assert result.status == "ok" and result.learning_rate in BASELINE_LEARNING_RATES
        assert result.val_logloss == min(result.swept_logloss.values())
        assert BaselineResult.from_dict(result.to_dict()) == result
    old = {k: v for k, v in results["lr"].to_dict().items() if k not in ("learning_rate", "swept_logloss")}
    assert BaselineResult.from_dict(old) == replace(results["lr"], learning_rate=None, swept_logloss=None)
