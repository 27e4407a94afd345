"""The trainer scores the test split with the reported (best epoch's) weights, with standard errors;
`unimixer-plan train` prints and reports it."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from typer.testing import CliRunner
from unimixer_plan.cli import app
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.mixers import save_config
from unimixer_plan.training.trainer import TrainSettings, evaluate

from tests.conftest import small_config


@pytest.fixture(scope="module")
def synthetic():
    return load_data(DataSpec(seed=1, vocab_cap=100, synthetic_val_rows=1_000), train_rows=1_500)


def test_the_scored_model_is_the_reported_one(synthetic):
    # Later epochs overfit (a high rate, no patience stop): the best epoch is not the last, and the
    # scored weights must be the best epoch's. Scored on a "test" split that is the validation split,
    # they must give exactly the validation numbers the trainer reported.
    config = small_config("fm", **synthetic.schema)
    settings = TrainSettings(learning_rate=3e-2, max_epochs=4, patience=10, lr_decay=1.0, val_subsample=1_000)
    same_rows = replace(synthetic, test=synthetic.val)
    result = evaluate(config, same_rows, 1_500, seed=0, settings=settings, score_test=True)
    score = result.test
    assert result.ok and score is not None
    assert result.best_epoch < result.epochs  # the last epoch's weights are not the ones reported
    assert score.logloss == pytest.approx(result.val_logloss, abs=1e-12)
    assert score.auc == pytest.approx(result.val_auc, abs=1e-12)
    held_out = evaluate(config, synthetic, 1_500, seed=0, settings=settings, score_test=True).test
    assert evaluate(config, synthetic, 1_500, seed=0, settings=settings).test is None  # only when asked
    assert held_out.rows == 1_000 and held_out.logloss != score.logloss
    assert 0 < held_out.logloss_se < 0.05 and 0 < held_out.auc_se < 0.05


def test_train_prints_and_reports_test_metrics(tmp_path):
    table, schema = tmp_path / "rows.csv", tmp_path / "schema.yaml"
    table.write_text("y,a,b\n" + "".join(f"{int(i % 7 < 2)},a{i % 7},b{i % 11}\n" for i in range(800)))
    schema.write_text("label: y\ncategorical: [a, b]\n")
    config = save_config(small_config("fm"), tmp_path / "m.yaml")  # tables resized to the data
    options = ["--data", str(table), "--schema", str(schema), "--min-count", "1", "--max-epochs", "2", "--no-cache"]
    result = CliRunner().invoke(app, ["train", str(config), *options, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout.strip().splitlines()[-1])
    assert document["test_rows"] == 80 and "train 640 / validation 80 / test 80" in document["data"]
    for key in ("test_logloss", "test_logloss_se", "test_auc", "test_auc_se"):
        assert math.isfinite(document[key]), key
    assert 0 < document["test_logloss_se"] < 0.1 and document["test_logloss"] != document["val_logloss"]
    text = CliRunner().invoke(app, ["train", str(config), *options])
    assert text.exit_code == 0
    line = next(line for line in text.stdout.splitlines() if "test AUC" in line)
    assert line == (
        f"fm: test AUC {document['test_auc']:.4f} ± {document['test_auc_se']:.4f}, test logloss "
        f"{document['test_logloss']:.4f} ± {document['test_logloss_se']:.4f} (80 rows that neither trained nor "
        "chose the model; ± one standard error)"
    )
