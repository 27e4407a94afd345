"""`unimixer-plan train` on a plan's chosen.yaml: the plan's own setting, measured next to the prediction."""

from __future__ import annotations

import json

from typer.testing import CliRunner
from unimixer_plan.cli import app
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.mixers import load_document, save_config
from unimixer_plan.plan_config import Budget, PlanConfig
from unimixer_plan.run.records import plan_setting
from unimixer_plan.training.trainer import TrainSettings

from tests.conftest import small_config

runner = CliRunner()
SPEC = DataSpec(seed=3, vocab_cap=50, synthetic_val_rows=1_000)
TRAINER = TrainSettings(max_epochs=1, val_subsample=500, learning_rate=2e-3)


def chosen_file(tmp_path, predicted: dict | None = None):
    plan = PlanConfig(budget=Budget(flops=1e6), data=SPEC, fidelity=1_500, seed=5, train=TRAINER)
    data = load_data(SPEC, train_rows=plan.fidelity)
    config = small_config("unimixing_lite", **data.schema)
    extra = {"metrics": {"predicted": predicted} if predicted else {"measured": {}}, "setting": plan_setting(plan)}
    return save_config(config, tmp_path / "chosen.yaml", extra=extra)


def test_a_chosen_yaml_trains_the_plan_s_setting_and_reports_the_prediction(tmp_path):
    predicted = {"val_logloss": 0.55, "val_logloss_interval_90": [0.5, 0.6]}
    path = chosen_file(tmp_path, predicted)
    result = runner.invoke(app, ["train", str(path), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout.strip().splitlines()[-1])
    assert document["distinct_samples"] == 1_500 and document["learning_rate"] == 2e-3
    assert document["epochs"] == 1 and "seed 3" in document["data"]
    assert document["predicted_val_logloss"] == 0.55 and document["predicted_interval"] == [0.5, 0.6]
    text = runner.invoke(app, ["train", str(path)])
    assert text.exit_code == 0
    measured = document["val_logloss"]
    verdict = "inside" if 0.5 <= measured <= 0.6 else "OUTSIDE"
    assert (
        f"the plan predicted val logloss 0.5500, 90% interval [0.5000, 0.6000]: measured {measured:.4f} is {verdict}"
        in (text.stdout)
    )


def test_any_data_or_trainer_option_trains_what_was_asked_without_the_comparison(tmp_path):
    path = chosen_file(tmp_path, {"val_logloss": 0.55, "val_logloss_interval_90": [0.5, 0.6]})
    result = runner.invoke(app, ["train", str(path), "--json", "--samples", "1000", "--max-epochs", "1"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout.strip().splitlines()[-1])
    assert "predicted_val_logloss" not in document and document["distinct_samples"] == 1_000
    assert "seed 0" in document["data"]  # the command line's defaults, not the plan's seed 3
    assert "the plan's recorded setting is not reproduced" in result.stderr


def test_the_setting_is_recorded_with_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = PlanConfig(budget=Budget(flops=1e6), data=DataSpec(path="rows.csv"), fidelity=2_000, seed=1)
    setting = plan_setting(plan)
    assert setting["data"]["path"] == str(tmp_path / "rows.csv")
    assert setting["train_samples"] == 2_000 and setting["seed"] == 1
    assert TrainSettings(**setting["trainer"]) == plan.train


def test_a_corrupt_setting_is_one_clear_line(tmp_path):
    path = chosen_file(tmp_path)
    document = load_document(path)
    document["setting"]["trainer"]["no_such_knob"] = 1
    save_config(small_config("unimixing_lite"), path, extra={k: v for k, v in document.items() if k != "model"})
    result = runner.invoke(app, ["train", str(path)])
    assert result.exit_code == 2
    assert "corrupt setting" in result.output and "Traceback" not in result.output


def test_a_setting_recorded_before_the_test_split_is_one_clear_line(tmp_path):
    path = chosen_file(tmp_path)
    document = load_document(path)
    data = document["setting"]["data"]
    data.update(path=str(tmp_path / "rows.csv"), val_fraction=0.2)
    del data["test_fraction"]
    save_config(small_config("unimixing_lite"), path, extra={k: v for k, v in document.items() if k != "model"})
    result = runner.invoke(app, ["train", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip() == (
        f"Error: {path}: recorded before real data had a test split (train/validation 80/20); start a new plan, "
        "or train with data options to say which split to use"
    )
