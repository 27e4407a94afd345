"""After the choice, the chosen configuration and the runner-up are re-trained with fresh seeds and scored on
the test split (``unimixer_plan.retrain_on_test``): what is re-trained, the paired bootstrap, the summary."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fakes import Scripted, ScriptedSearch, cached_data, fast_certify
from unimixer_plan import plan as plan_module
from unimixer_plan import retrain_on_test
from unimixer_plan.data import DataSpec
from unimixer_plan.plan import run_plan
from unimixer_plan.plan_config import Budget, PlanConfig
from unimixer_plan.retrain_on_test import paired_bootstrap, subjects
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.trial_record import TrialRecord, TrialRole, TrialStatus
from unimixer_plan.training.metrics import RankedScores, roc_auc

LITE = {"n_tokens": 8, "heads": 2, "rank": 4, "bases": 2, "depth": 1, "ffn_ratio": 2}
WUKONG = {"n_tokens": 8, "rank": 4, "depth": 1, "ffn_ratio": 2}


def pairwise_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The AUC by its definition: over every positive-negative pair, 1 if the positive scores higher, 1/2 if tied."""
    pos, neg = scores[labels == 1][:, None], scores[labels == 0][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def test_the_auc_of_a_reweighting_equals_the_pairwise_auc_of_the_resampled_rows_ties_included():
    rng = np.random.default_rng(1)
    labels = (rng.random(600) < 0.3).astype(float)
    scores = np.round(rng.normal(size=600) + labels, 1)  # many ties
    index = rng.integers(0, 600, 600)
    counts = np.bincount(index, minlength=600).astype(float)
    ranked = RankedScores(labels, scores)
    assert ranked.auc() == pytest.approx(pairwise_auc(labels, scores), abs=1e-12)
    assert ranked.auc(counts) == pytest.approx(pairwise_auc(labels[index], scores[index]), abs=1e-12)
    assert roc_auc(labels, scores) == ranked.auc() and math.isnan(roc_auc(np.ones(3), np.arange(3.0)))


def test_the_paired_bootstrap_finds_a_planted_gap_and_none_between_equal_models():
    rng = np.random.default_rng(0)
    labels = (rng.random(4_000) < 0.25).astype(float)
    noise = rng.normal(size=(3, 4_000))
    strong, weak = noise + 1.0 * labels - 1.2, noise + 0.4 * labels - 1.2
    better = paired_bootstrap(labels, strong, weak, seed=0, draws=300)
    assert better.logloss_difference < 0 and better.logloss_interval[1] < 0  # lower logloss, beyond the rows' noise
    assert better.auc_difference > 0 and better.auc_interval[0] > 0
    assert better.probability_chosen_better > 0.99
    worse = paired_bootstrap(labels, weak, strong, seed=0, draws=300)
    assert worse.probability_chosen_better < 0.01 and worse.logloss_difference == pytest.approx(
        -better.logloss_difference
    )
    same = paired_bootstrap(labels, strong, strong, seed=0, draws=300)
    assert same.logloss_difference == 0 and same.logloss_interval[0] < 0 < same.logloss_interval[1]
    assert 0.3 < same.probability_chosen_better < 0.7  # only the draws of seeds differ: a coin
    # the seeds' spread is in the interval: seeds far apart widen it at the same rows
    spread = noise + 1.0 * labels - 1.2 + np.array([[-0.3], [0.0], [0.3]])
    assert np.ptp(paired_bootstrap(labels, spread, weak, seed=0, draws=300).logloss_interval) > np.ptp(
        better.logloss_interval
    )


def record(trial_id: int, family: str, loss: float, flops: int, **extra) -> TrialRecord:
    knobs = {"n_tokens": 8, "d_model": 16, "depth": 1, "ffn_ratio": 2, "embed_dim": 8} | extra.pop("knobs", {})
    fields = {"rung": 0, "fidelity": 1000, "status": TrialStatus.OK, "val_auc": 0.7, "params_dense": 100} | extra
    return TrialRecord(trial_id=trial_id, family=family, val_logloss=loss, flops=flops, **knobs, **fields)


def test_a_direct_search_re_trains_the_chosen_trial_and_the_best_fitting_trial_of_another_architecture():
    plan = PlanConfig(budget=Budget(flops=1_000))
    chosen = record(0, "wukong", 0.40, 900)
    rows = [
        chosen,
        record(1, "wukong", 0.41, 900),  # the chosen architecture again: not a runner-up
        record(2, "wukong", 0.30, 5_000, knobs={"depth": 3}),  # better, but over the FLOPs budget
        record(3, "wukong", 0.35, 800, knobs={"depth": 2}, status=TrialStatus.STOPPED),  # low fidelity
        record(4, "wukong", 0.45, 700, knobs={"depth": 2}, role=TrialRole.SEED),  # a measurement
        record(5, "rankmixer", 0.43, 950),  # the runner-up
        record(6, "unimixer", 0.44, 600),
    ]
    summary = SimpleNamespace(mode="direct", chosen=SimpleNamespace(trial_id=0))
    picked, runner_up, subject = subjects(summary, rows, plan)
    assert (picked.trial_id, runner_up.trial_id, subject) == (0, 5, retrain_on_test.DIRECT_SUBJECT)
    assert subjects(summary, rows[:2], plan)[1] is None  # no other architecture fits: no runner-up


def test_a_ladder_re_trains_the_top_proxies_of_the_chosen_family_and_the_next_most_probable_one():
    plan = PlanConfig(budget=Budget(flops=1e9))
    rows = [
        record(0, "unimixer", 0.50, 100, rung=1),
        record(1, "unimixer", 0.45, 400, rung=2),
        record(2, "unimixer", 0.44, 390, rung=2),  # the chosen family's best on its top rung
        record(3, "rankmixer", 0.43, 400, rung=2),  # lower loss, but the least probable family
        record(4, "unimixing_lite", 0.46, 400, rung=2),
    ]
    probabilities = {"unimixer": 0.5, "rankmixer": 0.2, "unimixing_lite": 0.3}
    chosen = SimpleNamespace(model=SimpleNamespace(family="unimixer"))
    summary = SimpleNamespace(mode="ladder", chosen=chosen, family_probabilities=probabilities)
    picked, runner_up, subject = subjects(summary, rows, plan)
    assert (picked.trial_id, runner_up.trial_id, subject) == (2, 4, retrain_on_test.LADDER_SUBJECT)
    # the chosen family reached rung 3, the runner-up only rung 2: the pair is compared on rung 2
    higher = [*rows, record(5, "unimixer", 0.42, 1600, rung=3)]
    assert [r.trial_id for r in subjects(summary, higher, plan)[:2]] == [2, 4]
    assert subjects(summary, [r for r in higher if r.family == "unimixer"], plan)[:2] == (higher[-1], None)


@pytest.fixture
def real_check_plan(monkeypatch, tmp_path):
    monkeypatch.setattr(plan_module, "load_data", lambda spec, train_rows: cached_data(spec, train_rows))
    monkeypatch.setattr(plan_module, "train_baselines", lambda *args, **kwargs: {})
    monkeypatch.setattr("unimixer_plan.outcome.certify", fast_certify)
    monkeypatch.setattr("unimixer_plan.reports.write_report", lambda path: Path(path) / "report.html")
    return PlanConfig(
        budget=Budget(flops=3e5, batch_size=8),
        data=DataSpec(synthetic_val_rows=512),
        families=("unimixing_lite", "wukong"),
        trials=3,
        fidelity=1000,
        seed=4,
        out=str(tmp_path / "run"),
    )


SCRIPT = [Scripted("wukong", WUKONG, 0.3, 0.48), Scripted("unimixing_lite", LITE, 0.3, 0.50)]


def test_the_summary_reports_the_choice_and_runner_up_re_trained_on_the_test_split(real_check_plan, monkeypatch):
    outcome = run_plan(real_check_plan, search=ScriptedSearch(lambda rung, k: SCRIPT[k % 2]).runner)
    check = outcome.summary.final_check
    assert outcome.summary.chosen.trial_id == 0 and check.subject == retrain_on_test.DIRECT_SUBJECT
    assert (check.chosen.trial_id, check.runner_up.trial_id, check.rows) == (0, 1, 512)
    assert check.chosen.seeds == check.runner_up.seeds == [5, 6, 7]  # no search trial used them (seed 4)
    per_seed = [s["logloss"] for s in check.chosen.per_seed]
    assert check.chosen.logloss == pytest.approx(np.mean(per_seed))
    assert check.chosen.logloss_se >= np.std(per_seed, ddof=1) / math.sqrt(3)  # seeds' spread, plus the rows'
    assert check.paired.logloss_difference == pytest.approx(check.chosen.logloss - check.runner_up.logloss)
    written = json.loads(RunFolder(Path(real_check_plan.out)).summary_file.read_text())
    assert written["test"]["chosen"]["logloss"] == check.chosen.logloss
    assert written["chosen"]["val_logloss"] == 0.48  # the number that chose is the search's, kept apart

    without = run_plan(
        dataclasses.replace(real_check_plan, test_seeds=0, out=real_check_plan.out + "-without"),
        search=ScriptedSearch(lambda rung, k: SCRIPT[k % 2]).runner,
    )
    assert without.summary.final_check is None and without.summary.chosen == outcome.summary.chosen  # no leak
    monkeypatch.setattr(retrain_on_test, "evaluate", lambda *a, **k: pytest.fail("re-trained on resume"))
    resumed = run_plan(real_check_plan, resume=True, search=ScriptedSearch(lambda rung, k: SCRIPT[k % 2]).runner)
    assert resumed.summary.final_check == check  # kept in final_check.json


def test_a_seed_that_fails_to_train_is_listed_and_left_out_not_raised(monkeypatch):
    from unimixer_plan.training.metrics import score_logits

    data = cached_data(DataSpec(synthetic_val_rows=256), 1000)
    labels = data.test.labels

    def fake_evaluate(config, data, fidelity, seed, **kwargs):
        if seed == 6:
            return SimpleNamespace(ok=False, test=None, error="non-finite loss")
        logits = torch.from_numpy(np.random.default_rng(seed).normal(size=len(labels))).float()
        return SimpleNamespace(ok=True, test=score_logits(labels, logits), error=None)

    monkeypatch.setattr(retrain_on_test, "evaluate", fake_evaluate)
    plan = PlanConfig(budget=Budget(flops=3e5), seed=4)
    chosen, runner_up = (
        record(0, "unimixer", 0.4, 900, knobs={"heads": 2}),
        record(1, "rankmixer", 0.41, 900, knobs={"heads": 8}),
    )
    check = retrain_on_test.final_check(plan, data, data.schema, chosen, runner_up, "subject")
    assert check.chosen.seeds == check.runner_up.seeds == [5, 7]
    assert check.failures == ["chosen (trial 0) seed 6: non-finite loss", "runner-up (trial 1) seed 6: non-finite loss"]
    assert check.paired is not None


def test_a_check_whose_chosen_config_never_trains_warns_with_the_error(real_check_plan, monkeypatch):
    def always_fails(config, data, fidelity, seed, **kwargs):
        return SimpleNamespace(ok=False, test=None, error="RuntimeError: lu_solve pivots")

    monkeypatch.setattr(retrain_on_test, "evaluate", always_fails)
    outcome = run_plan(real_check_plan, search=ScriptedSearch(lambda rung, k: SCRIPT[k % 2]).runner)
    assert outcome.summary.final_check is None
    (warning,) = [w for w in outcome.summary.warnings if w.startswith("test split:")]
    assert "trained again" in warning and warning.endswith(": RuntimeError: lu_solve pivots")  # the cause, once


def test_the_check_round_trips_through_summary_json_and_reaches_the_report_table():
    from unimixer_plan.reports.data import final_check_rows
    from unimixer_plan.run.final_check import FinalCheck, PairedComparison, RetrainedScore
    from unimixer_plan.run.summary import PlanSummary

    def score(role: str, trial_id: int, logloss: float) -> RetrainedScore:
        per_seed = [{"seed": s, "logloss": logloss, "auc": 0.7} for s in (0, 1, 2)]
        return RetrainedScore(role, trial_id, "wukong", 900, 1000, [0, 1, 2], logloss, 0.003, 0.7, 0.01, per_seed)

    paired = PairedComparison(-0.004, [-0.007, -0.001], 0.006, [0.001, 0.011], 0.98, 1000)
    check = FinalCheck("subject", 512, score("chosen", 3, 0.451), score("runner-up", 5, 0.455), paired, ["x"])
    summary = PlanSummary(
        run_dir="r", mode="direct", data="d", synthetic=True, trials=6, trials_by_status={}, pareto_size=2,
        interrupted=False, budget=Budget(flops=1e6), chosen=None, final_check=check,
    )  # fmt: skip
    assert PlanSummary.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary
    rows = dict(final_check_rows(summary))
    assert "logloss 0.4510 ± 0.0030" in rows["test: chosen"] and "trial 5" in rows["test: runner-up"]
    assert (
        "-0.0040, 90% [-0.0070, -0.0010]" in rows["test: chosen - runner-up"]
        and "P(chosen lower) 0.98" in (rows["test: chosen - runner-up"])
    )


def test_a_check_with_a_failed_seed_is_reported_but_not_kept_so_resume_tries_again(real_check_plan, monkeypatch):
    from unimixer_plan.training.metrics import score_logits

    def one_seed_fails(config, data, fidelity, seed, **kwargs):
        if seed == 6:
            return SimpleNamespace(ok=False, test=None, error="out of memory")
        logits = torch.from_numpy(np.random.default_rng(seed).normal(size=len(data.test))).float()
        return SimpleNamespace(ok=True, test=score_logits(data.test.labels, logits), error=None)

    monkeypatch.setattr(retrain_on_test, "evaluate", one_seed_fails)
    outcome = run_plan(real_check_plan, search=ScriptedSearch(lambda rung, k: SCRIPT[k % 2]).runner)
    assert outcome.summary.final_check.failures and outcome.summary.final_check.chosen.seeds == [5, 7]
    assert not RunFolder(Path(real_check_plan.out)).final_check_file.exists()
