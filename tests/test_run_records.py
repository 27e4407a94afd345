"""The typed run records: a trial to and from trials.csv and a Ray result, summary.json to and from PlanSummary.

The plan's decisions on these records are tested in test_plan_logic.py; here, that the conversions keep
the file formats and apply the status rules.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import pytest
from fakes import Scripted, ScriptedSearch, cached_data, fast_certify
from unimixer_plan import plan as plan_module
from unimixer_plan.data import DataSpec
from unimixer_plan.errors import PlanError
from unimixer_plan.plan import run_plan
from unimixer_plan.plan_config import Budget, PlanConfig
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.summary import PlanSummary
from unimixer_plan.run.trial_record import (
    ERRORED_TEXT,
    LATER_COLUMNS,
    STOPPED_REASON,
    TRIAL_COLUMNS,
    TrialRecord,
    TrialStatus,
)
from unimixer_plan.training.baselines import BaselineResult

WUKONG = {"n_tokens": 8, "rank": 4, "depth": 2, "ffn_ratio": 2}
MODEL = {"family": "wukong", "n_tokens": 8, "d_model": 24, "rank": 4, "depth": 2, "ffn_ratio": 2, "embed_dim": 16}
TRAINED = {"flops": 68_272, "params_dense": 28_537, "latency_ms": math.nan, "distinct_samples": 1000}


def complete() -> TrialRecord:
    return TrialRecord(
        trial_id=3,
        rung=2,
        optuna_trial=1,
        family="wukong",
        n_tokens=8,
        d_model=24,
        rank=4,
        depth=2,
        ffn_ratio=2,
        embed_dim=16,
        fidelity=1000,
        samples_seen=6000,
        epochs=6,
        best_epoch=4,
        status=TrialStatus.OK,
        val_logloss=0.4812345678901234,
        val_auc=0.71,
        flops=68_272,
        params_dense=28_537,
        latency_ms=1.25,
        learning_rate=0.003,
        wall_time_s=3.5,
        stop_reason="early stopping",
        node="10.0.0.7/8f3a21c0",
    )


def test_the_record_is_the_table_in_column_order_with_the_file_s_status_values():
    assert tuple(f.name for f in dataclasses.fields(TrialRecord)) == TRIAL_COLUMNS
    assert [s.value for s in TrialStatus] == ["ok", "stopped", "failed", "infeasible"]


def test_a_record_round_trips_through_a_csv_row_and_trials_csv(tmp_path):
    sparse = TrialRecord(trial_id=4, rung=0, status=TrialStatus.INFEASIBLE, wall_time_s=0.0, error="no valid d_model")
    records = [complete(), sparse, dataclasses.replace(complete(), trial_id=5, status=TrialStatus.STOPPED)]
    for record in records:
        assert TrialRecord.from_csv_row(record.to_csv_row()) == record
    cells = sparse.to_csv_row()
    assert cells["val_logloss"] == cells["flops"] == cells["family"] == cells["optuna_trial"] == ""  # absent: empty
    assert cells["wall_time_s"] == "0.0" and cells["status"] == "infeasible"
    assert complete().to_csv_row()["val_logloss"] == "0.4812345678901234"  # no digit lost
    folder = RunFolder(tmp_path)
    for record in records:
        folder.append_trial(record)
    assert folder.load_trials() == records
    read_back = folder.load_trials()[1]
    assert read_back.flops is None and math.isnan(read_back.val_logloss) and read_back.family is None


def test_a_folder_from_before_the_later_columns_resumes_with_its_own_columns(tmp_path):
    folder = RunFolder(tmp_path)
    old_columns = [c for c in TRIAL_COLUMNS if c not in LATER_COLUMNS]
    with folder.trials_file.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=old_columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerow(complete().to_csv_row())
    folder.append_trial(dataclasses.replace(complete(), trial_id=4))
    with folder.trials_file.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert {len(row) for row in rows} == {len(old_columns)}  # every row as wide as the header
    assert [r.trial_id for r in folder.load_trials()] == [3, 4] and folder.load_trials()[1].node is None
    assert folder.load_trials()[1].started is None


def test_is_complete_needs_status_ok_and_a_measured_logloss():
    assert complete().is_complete
    assert not dataclasses.replace(complete(), status=TrialStatus.STOPPED).is_complete
    assert not dataclasses.replace(complete(), val_logloss=math.nan).is_complete


def test_a_corrupt_status_or_number_in_trials_csv_is_a_plan_error_naming_the_line(tmp_path):
    folder = RunFolder(tmp_path)
    folder.append_trial(complete())
    folder.append_trial(dataclasses.replace(complete(), trial_id=4))
    text = folder.trials_file.read_text().splitlines()
    folder.trials_file.write_text("\n".join([*text[:2], text[2].replace(",ok,", ",done,")]) + "\n")
    expected = r"trials.csv: line 3: corrupt trial row \(status 'done' is not one of \('ok', 'stopped', 'failed', "
    with pytest.raises(PlanError, match=expected + r"'infeasible'\)\)$"):
        folder.load_trials()
    folder.trials_file.write_text("\n".join([text[0], text[1].replace(",68272,", ",many,")]) + "\n")
    with pytest.raises(PlanError, match=r"line 2: corrupt trial row \(invalid literal for int"):
        folder.load_trials()


def ray(result: dict | None, errored: bool = False, model: dict | None = MODEL) -> TrialRecord:
    return TrialRecord.from_ray_result(7, {"model": model, "rung": 1, "trial_number": 2}, result, errored)


def test_a_trial_whose_last_report_was_an_epoch_s_was_stopped_by_successive_halving():
    record = ray({**TRAINED, "status": "running", "epoch": 2, "samples_seen": 2000, "val_logloss": 0.55})
    assert record.status is TrialStatus.STOPPED and record.stop_reason == STOPPED_REASON
    assert record.val_logloss == 0.55 and record.epochs == 2 and not record.is_complete  # kept, never chosen
    assert (record.trial_id, record.rung, record.optuna_trial, record.d_model) == (7, 1, 2, 24)


def test_a_finished_trial_keeps_its_status_and_its_own_stop_reason():
    final = {**TRAINED, "status": "ok", "epoch": 6, "best_epoch": 4, "val_logloss": 0.48, "stop_reason": "plateau"}
    record = ray(final)
    assert record.status is TrialStatus.OK and record.is_complete
    assert record.stop_reason == "plateau" and record.error is None and record.fidelity == 1000
    assert math.isnan(record.latency_ms) and record.flops == 68_272


def test_an_errored_or_silent_trial_failed():
    errored = ray({**TRAINED, "status": "ok", "epoch": 6, "val_logloss": 0.48}, errored=True)
    assert errored.status is TrialStatus.FAILED and errored.error == ERRORED_TEXT and not errored.is_complete
    own = ray({**TRAINED, "status": "running", "epoch": 1, "error": "loss diverged"}, errored=True)
    assert own.status is TrialStatus.FAILED and own.error == "loss diverged" and own.stop_reason is None
    silent = ray(None)
    assert silent.status is TrialStatus.FAILED and silent.error is None and silent.fidelity is None
    reported = ray({**TRAINED, "status": "failed", "epoch": 3, "error": "non-finite loss"})
    assert reported.status is TrialStatus.FAILED and reported.error == "non-finite loss"


def test_an_infeasible_trial_keeps_no_logloss_and_no_width_means_no_model():
    slow = ray({**TRAINED, "latency_ms": 9.5, "status": "infeasible", "epoch": 0, "val_logloss": 0.69})
    assert slow.status is TrialStatus.INFEASIBLE and math.isnan(slow.val_logloss)  # the base rate is Optuna's only
    assert slow.latency_ms == 9.5 and slow.flops == 68_272 and slow.family == "wukong"
    nan = math.nan
    no_width = ray({"status": "infeasible", "epoch": 0, "flops": nan, "params_dense": nan}, model=None)
    assert no_width.status is TrialStatus.INFEASIBLE and no_width.family is None and no_width.d_model is None
    assert no_width.flops is None and no_width.params_dense is None  # NaN counts are absent, as in trials.csv


# summary.json: a real one, written by a scripted plan, read back into the same record and the same bytes.
def baselines(*args, **kwargs) -> dict[str, BaselineResult]:
    model = {"family": "fm"}
    return {
        "lr": BaselineResult("lr", "ok", 0.52, 0.69, 40, 0, 100, 5, 4, model),
        "fm": BaselineResult("fm", "ok", 0.30, 0.80, 10, 0, 1000, 6, 5, model),  # beats the chosen: a warning
    }


@pytest.fixture
def scripted_plan(monkeypatch):
    monkeypatch.setattr(plan_module, "load_data", lambda spec, train_rows: cached_data(spec, train_rows))
    monkeypatch.setattr(plan_module, "train_baselines", baselines)
    monkeypatch.setattr(plan_module, "with_final_check", lambda plan, folder, data, summary, on_progress: summary)
    monkeypatch.setattr("unimixer_plan.outcome.certify", fast_certify)
    monkeypatch.setattr("unimixer_plan.reports.write_report", lambda path: Path(path) / "report.html")


def plan_config(tmp_path: Path, flops: float, trials: int, **extra) -> PlanConfig:
    return PlanConfig(
        budget=Budget(flops=flops, batch_size=8),
        data=DataSpec(synthetic_val_rows=256),
        families=("wukong",),
        trials=trials,
        fidelity=1000,
        out=str(tmp_path / "run"),
        **extra,
    )


def assert_round_trips(summary: PlanSummary, folder: Path) -> None:
    text = (folder / "summary.json").read_text()
    assert json.dumps(summary.to_dict(), indent=2) + "\n" == text  # the same keys, order and values
    assert PlanSummary.from_dict(json.loads(text)) == summary == RunFolder(folder).load_summary()
    assert PlanSummary.from_dict(summary.to_dict()).to_dict() == summary.to_dict()


def test_a_direct_plan_s_summary_round_trips(tmp_path, scripted_plan):
    script = [Scripted("wukong", WUKONG, 0.9, 0.50), Scripted("wukong", WUKONG, 0.5, 0.45, status=TrialStatus.STOPPED)]
    outcome = run_plan(plan_config(tmp_path, 3e5, 2), search=ScriptedSearch(lambda r, k: script[k]).runner)
    summary = outcome.summary
    assert summary.chosen.trial_id == 0 and summary.warnings and summary.chosen.gain_over_baselines["fm"].auc < 0
    assert summary.rungs is None and summary.held_out is None  # a direct plan writes neither key
    assert summary.family_probabilities is None and "family_probabilities" not in summary.to_dict()
    assert_round_trips(summary, Path(summary.run_dir))
    with (Path(summary.run_dir) / "pareto.csv").open() as handle:
        assert tuple(csv.DictReader(handle).fieldnames) == TRIAL_COLUMNS


def ladder_script(rung, k):
    return Scripted("wukong", WUKONG, 1.0 if k % 2 == 0 else 0.4, lambda flops: 0.47 + 0.25 * (flops / 1e4) ** -0.3)


def test_a_ladder_s_summary_round_trips_finished_and_interrupted(tmp_path, scripted_plan):
    plan = plan_config(tmp_path, 2.4e7, 15, proxy_max_flops=1.5e6)  # 8 search trials, 7 measurements
    interrupted = run_plan(plan, search=ScriptedSearch(ladder_script, interrupt_after=3).runner).summary
    assert interrupted.interrupted and interrupted.mode == "ladder" and interrupted.rungs is None
    assert_round_trips(interrupted, Path(plan.out))
    summary = run_plan(plan, resume=True, search=ScriptedSearch(ladder_script).runner).summary
    assert summary.chosen.predicted and summary.chosen.held_out is not None and summary.rungs
    assert summary.family_probabilities == {"wukong": 1.0}  # one family: certain to be the lowest of one
    assert interrupted.family_probabilities is None and "family_probabilities" not in interrupted.to_dict()
    assert_round_trips(summary, Path(plan.out))


def test_a_corrupt_summary_is_a_plan_error(tmp_path):
    folder = RunFolder(tmp_path)
    folder.summary_file.write_text(json.dumps({"run_dir": str(tmp_path), "mode": "direct"}))
    with pytest.raises(PlanError, match=r"summary.json: corrupt summary file \(KeyError: 'data'\)"):
        folder.load_summary()
