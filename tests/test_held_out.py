"""`unimixer-plan train` scores the test split with the best epoch's weights, with standard errors."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from typer.testing import CliRunner
from unimixer_plan.cli import app
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.held_out import train_and_score
from unimixer_plan.mixers import save_config
from unimixer_plan.training.trainer import TrainSettings

from tests.conftest import small_config


@pytest.fixture(scope="module")
def synthetic():
    return load_data(DataSpec(seed=1, vocab_cap=100, synthetic_val_rows=2_000), train_rows=3_000)


def test_the_scored_model_is_the_reported_one(synthetic):
    # Later epochs overfit (a high rate, no patience stop): the best epoch is not the last, and the
    # captured model must be the best one. Scored on a "test" split that is the validation split,
    # it must give exactly the validation numbers the trainer reported.
    config = small_config("fm", **synthetic.schema)
    settings = TrainSettings(learning_rate=3e-2, max_epochs=5, patience=10, lr_decay=1.0, val_subsample=2_000)
    same_rows = replace(synthetic, test=synthetic.val)
    result, score = train_and_score(config, same_rows, 3_000, 0, settings)
    assert result.ok and score is not None
    assert result.best_epoch < result.epochs  # the last epoch's weights are not the ones reported
    assert score.logloss == pytest.approx(result.val_logloss, abs=1e-12)
    assert score.auc == pytest.approx(result.val_auc, abs=1e-12)
    _, held_out = train_and_score(config, synthetic, 3_000, 0, settings)
    assert held_out.rows == 2_000 and held_out.logloss != score.logloss
    assert 0 < held_out.logloss_se < 0.05 and 0 < held_out.auc_se < 0.05


def test_train_prints_and_reports_test_metrics(tmp_path):
    config = save_config(
        small_config("fm", **load_data(DataSpec(vocab_cap=50), train_rows=16).schema), tmp_path / "m.yaml"
    )
    result = CliRunner().invoke(app, ["train", str(config), "--samples", "1000", "--max-epochs", "1", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout.strip().splitlines()[-1])
    assert document["test_rows"] == 32_768
    for key in ("test_logloss", "test_logloss_se", "test_auc", "test_auc_se"):
        assert math.isfinite(document[key]), key
    assert document["test_logloss_se"] < 0.01 and document["test_logloss"] != document["val_logloss"]
    text = CliRunner().invoke(app, ["train", str(config), "--samples", "1000", "--max-epochs", "1"])
    assert text.exit_code == 0
    line = next(line for line in text.stdout.splitlines() if "test AUC" in line)
    assert line.startswith(f"fm: test AUC {document['test_auc']:.4f} ± {document['test_auc_se']:.4f}, test logloss ")
    assert "32,768 rows that neither trained nor chose the model" in line
    assert "on validation" in text.stdout and "on test)" in text.stdout  # both synthetic floors
