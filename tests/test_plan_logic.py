"""The plan's decisions through the search seam: a scripted search (tests/fakes.py), no Ray, no training.

What runs for real: budgets, rungs and the proxy ladder, resume and interruption, the run folder, the
Pareto set, the choice (directly and at the target), the scaling fits and the scale-up. Only the
trials' numbers are scripted, so each test knows which configuration must win.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from fakes import Scripted, ScriptedSearch, cached_data, fast_certify
from typer.testing import CliRunner
from unimixer_plan import ladder_outcome
from unimixer_plan import plan as plan_module
from unimixer_plan.cli import app
from unimixer_plan.criteo import CRITEO_KAGGLE_TRAIN_ROWS
from unimixer_plan.data import DataSpec
from unimixer_plan.errors import PlanError
from unimixer_plan.measurements import MEASUREMENT_STUDY
from unimixer_plan.mixers import ModelConfig, analytic_cost, load_config
from unimixer_plan.plan import run_plan
from unimixer_plan.plan_config import Budget, PlanConfig
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.records import plan_setting
from unimixer_plan.run.trial_record import TrialRecord, TrialStatus
from unimixer_plan.scaling.ladder import FILL_LOW
from unimixer_plan.search.ray_session import RAY_TEMP_MARKER, RAY_TEMP_PREFIX, ray_temp_base, remove_stale_ray_dir
from unimixer_plan.search.rungs import check_ray_address, ray_address_endpoint
from unimixer_plan.search_spaces import DEFAULT_PLAN_FAMILIES, DEFAULT_SPACE_FILE
from unimixer_plan.summary_text import print_summary

EXE = str(Path(sys.executable).with_name("unimixer-plan"))
LITE = {"n_tokens": 8, "heads": 2, "rank": 4, "bases": 2, "depth": 2, "ffn_ratio": 2}
WUKONG = {"n_tokens": 8, "rank": 4, "depth": 2, "ffn_ratio": 2}
SMALL_DATA = DataSpec(synthetic_val_rows=256)
DEFAULT_SPACE_TEXT = (
    Path(__file__).parents[1] / "search_spaces" / DEFAULT_SPACE_FILE
).read_text()  # the data only sizes the schema here; keep it tiny


@pytest.fixture(autouse=True)
def _data_once(monkeypatch):
    monkeypatch.setattr(plan_module, "load_data", lambda spec, train_rows: cached_data(spec, train_rows))
    monkeypatch.setattr(plan_module, "train_baselines", lambda *args, **kwargs: {})
    # the scripted trials have no weights to re-train; the final check is tested in test_final_check.py
    monkeypatch.setattr(plan_module, "with_final_check", lambda plan, folder, data, summary, on_progress: summary)


@pytest.fixture
def no_report_no_certify(monkeypatch):
    """Choice tests need neither fvcore nor a latency benchmark nor the HTML page (tested elsewhere)."""
    monkeypatch.setattr("unimixer_plan.outcome.certify", fast_certify)
    monkeypatch.setattr("unimixer_plan.reports.write_report", lambda path: Path(path) / "report.html")


def direct_plan(tmp_path: Path, trials: int, **budget) -> PlanConfig:
    return PlanConfig(
        budget=Budget(**({"flops": 3e5} | budget), batch_size=8),
        data=SMALL_DATA,
        families=("unimixing_lite", "wukong"),
        trials=trials,
        fidelity=1000,
        out=str(tmp_path / "run"),
    )


def ladder_plan(tmp_path: Path, trials: int = 30, budget: Budget | None = None, **extra) -> PlanConfig:
    """A 4-rung ladder over two families: 30 trials = 16 search trials (4 per rung) + 14 measurements."""
    return PlanConfig(
        budget=budget or Budget(flops=2.4e7, batch_size=8),
        data=SMALL_DATA,
        families=("unimixing_lite", "wukong"),
        trials=trials,
        fidelity=1000,
        out=str(tmp_path / "run"),
        proxy_max_flops=1.5e6,
        **extra,
    )


# Direct plan: trial k of the one rung. The right choice is trial 1 (lowest logloss at full
# fidelity within every budget); trial 2 is better but was stopped early, trial 6 is better
# but over the FLOPs budget, trial 3 ties trial 1 on logloss at a higher cost.
DIRECT_SCRIPT = [
    Scripted("unimixing_lite", LITE, 0.9, 0.50),
    Scripted("wukong", WUKONG, 0.3, 0.48),
    Scripted("unimixing_lite", LITE, 0.5, 0.40, status=TrialStatus.STOPPED, fidelity_share=1 / 3),
    Scripted("wukong", WUKONG, 0.9, 0.48),
    Scripted("unimixing_lite", LITE, 0.2, 0.70, status=TrialStatus.FAILED, fidelity_share=0.1),
    Scripted("wukong", WUKONG, 0.4, 0.60, status=TrialStatus.INFEASIBLE, fidelity_share=0),
    Scripted("unimixing_lite", LITE, 1.6, 0.45),
    Scripted("wukong", WUKONG, 0.1, 0.56),
]


def direct_script(rung, k):
    return DIRECT_SCRIPT[k]


def brute_force_front(rows: list[TrialRecord], columns: list[str]) -> set[int]:
    points = np.array([[r.number(c) for c in columns] for r in rows])
    return {
        rows[i].trial_id
        for i in range(len(rows))
        if not any(np.all(points[j] <= points[i]) and np.any(points[j] < points[i]) for j in range(len(rows)))
    }


def test_direct_plan_chooses_the_lowest_logloss_at_full_fidelity_within_budget(tmp_path, no_report_no_certify):
    plan = direct_plan(tmp_path, trials=len(DIRECT_SCRIPT))
    search = ScriptedSearch(direct_script)
    outcome = run_plan(plan, search=search.runner)
    summary = outcome.summary
    assert [r.study_name for r in search.rungs_run] == ["plan"]
    assert summary.mode == "direct" and not summary.interrupted
    assert summary.trials == summary.planned_trials == len(DIRECT_SCRIPT)
    assert summary.trials_by_status == {"ok": 5, "stopped": 1, "failed": 1, "infeasible": 1}
    chosen = summary.chosen
    assert chosen.trial_id == 1, chosen  # not 2 (stopped early), not 6 (over budget), not 3 (tie, costlier)
    assert chosen.val_logloss == 0.48 and chosen.fidelity == plan.fidelity
    assert chosen.certificate.flops_fvcore <= 3e5 and chosen.margins["flops"] >= 0
    rows = RunFolder(Path(plan.out)).load_trials()
    row = rows[1]
    assert chosen.model.family == "wukong" and chosen.model.d_model == row.d_model
    assert load_config(Path(plan.out) / "chosen.yaml") == chosen.model
    assert json.loads((Path(plan.out) / "summary.json").read_text()) == json.loads(json.dumps(summary.to_dict()))


def test_direct_plan_pareto_set_is_the_brute_force_front_of_full_fidelity_rows(tmp_path, no_report_no_certify):
    plan = direct_plan(tmp_path, trials=len(DIRECT_SCRIPT))
    outcome = run_plan(plan, search=ScriptedSearch(direct_script).runner)
    folder = RunFolder(Path(plan.out))
    full = [r for r in folder.load_trials() if r.status is TrialStatus.OK and r.fidelity >= plan.fidelity]
    expected = brute_force_front(full, [c for c, _ in plan.objectives])
    with folder.pareto_file.open() as handle:
        front = [int(r["trial_id"]) for r in csv.DictReader(handle)]
    assert set(front) == expected and len(front) == len(expected) == outcome.summary.pareto_size
    assert 2 not in front  # a stopped trial's partial logloss never enters the front
    by_id = {r.trial_id: r for r in full}
    assert [by_id[i].flops for i in front] == sorted(by_id[i].flops for i in front)  # ordered by FLOPs
    assert expected == {1, 6, 7}, expected  # the scripted landscape's front (6 is over budget but non-dominated)


def test_direct_plan_ties_on_logloss_go_to_the_cheaper_model(tmp_path, no_report_no_certify):
    script = [Scripted("wukong", WUKONG, 0.9, 0.5), Scripted("wukong", WUKONG, 0.2, 0.5)]
    outcome = run_plan(direct_plan(tmp_path, trials=2), search=ScriptedSearch(lambda r, k: script[k]).runner)
    assert outcome.summary.chosen.trial_id == 1


def test_a_latency_budget_binds_the_choice(tmp_path, monkeypatch, no_report_no_certify):
    monkeypatch.setattr(plan_module, "measure_latency_ms", modelled_latency_ms)  # the reachability check
    # Trial 0 is the best logloss but over the latency budget; trial 1 is within every budget.
    script = [
        Scripted("wukong", WUKONG, 0.9, 0.40, latency_ms=3.0),
        Scripted("wukong", WUKONG, 0.5, 0.45, latency_ms=1.0),
        Scripted("wukong", WUKONG, 0.3, 0.50, latency_ms=math.nan),  # unmeasured: meets no latency budget
    ]
    plan = direct_plan(tmp_path, trials=3, latency_ms=2.0)
    outcome = run_plan(plan, search=ScriptedSearch(lambda r, k: script[k]).runner)
    assert outcome.summary.chosen.trial_id == 1
    assert [c for c, _ in plan.objectives] == ["val_logloss", "flops", "latency_ms"]


def test_no_full_fidelity_trial_means_no_choice(tmp_path, no_report_no_certify):
    script = Scripted("wukong", WUKONG, 0.5, 0.4, status=TrialStatus.STOPPED, fidelity_share=1 / 9)
    outcome = run_plan(direct_plan(tmp_path, trials=2), search=ScriptedSearch(lambda r, k: script).runner)
    assert outcome.summary.chosen is None and outcome.summary.pareto_size == 0
    assert not (Path(outcome.summary.run_dir) / "chosen.yaml").exists()


def test_resume_runs_only_the_missing_trials_and_keeps_finished_rows(tmp_path, no_report_no_certify):
    plan = direct_plan(tmp_path, trials=len(DIRECT_SCRIPT))
    first = run_plan(plan, search=ScriptedSearch(direct_script, interrupt_after=3).runner)
    assert first.summary.interrupted and first.summary.trials == 3
    assert json.loads((Path(plan.out) / "summary.json").read_text())["interrupted"] is True
    with pytest.raises(PlanError, match="already holds a plan"):
        run_plan(plan, search=ScriptedSearch(direct_script).runner)
    before = RunFolder(Path(plan.out)).load_trials()
    search = ScriptedSearch(direct_script)
    second = run_plan(plan, resume=True, search=search.runner)
    rows = RunFolder(Path(plan.out)).load_trials()
    assert [r.trials for r in search.rungs_run] == [len(DIRECT_SCRIPT) - 3]
    assert rows[:3] == before and [r.trial_id for r in rows] == list(range(len(DIRECT_SCRIPT)))
    assert not second.summary.interrupted and second.summary.chosen.trial_id == 1
    again = ScriptedSearch(direct_script)
    run_plan(plan, resume=True, search=again.runner)  # a finished plan: nothing more runs
    assert again.rungs_run == [] and len(RunFolder(Path(plan.out)).load_trials()) == len(DIRECT_SCRIPT)


# Proxy ladder: both families follow a planted law in FLOPs and data; unimixing_lite is better at every
# scale, with small deterministic noise (proxy-level, 0.002) on every point, measurements included.
def planted_law(family: str, flops: float, samples: float) -> float:
    floor = 0.44 if family == "unimixing_lite" else 0.47
    return floor + 0.25 * (flops / 1e4) ** -0.3 + 0.3 * (samples / 1e3) ** -0.3


# A ladder rung is one study over both families; the scripts alternate them (trial k of a rung is the
# family's (k // 2)-th), each family first at the top of the rung, then at 0.4 of it.
LADDER_FAMILIES = ("unimixing_lite", "wukong")


def ladder_step(k: int) -> tuple[str, float]:
    return LADDER_FAMILIES[k % 2], 1.0 if (k // 2) % 2 == 0 else 0.4


def ladder_loss(family: str, rung, k: int):
    noise = 0.002 * math.sin(7.0 * rung.index + 3.0 * (k // 2) + (1.0 if family == "wukong" else 0.0))
    return lambda flops: planted_law(family, flops, rung.samples) + noise


def ladder_measure(trial, source_loss: float) -> float:
    model = ModelConfig.from_dict(trial.model)
    noise = 0.002 * math.sin(5.0 * trial.rung + 11.0 * trial.seed + (1.0 if trial.role == "data" else 0.0))
    return planted_law(model.family, analytic_cost(model).flops, trial.fidelity) + noise


def ladder_script(rung, k):
    family, level = ladder_step(k)
    knobs = LITE if family == "unimixing_lite" else WUKONG
    return Scripted(family, knobs, level, ladder_loss(family, rung, k))


def ladder_search(**options) -> ScriptedSearch:
    return ScriptedSearch(ladder_script, measure=ladder_measure, **options)


def test_ladder_chooses_the_family_most_likely_lowest_at_the_target(tmp_path, no_report_no_certify):
    plan = ladder_plan(tmp_path)
    search = ladder_search()
    outcome = run_plan(plan, search=search.runner)
    summary = outcome.summary
    searched = [r for r in search.rungs_run if not r.fixed]
    assert sorted({r.flops for r in searched}) == pytest.approx([2.4e7 / 4**k for k in (5, 4, 3, 2)])
    # data doubles per rung from --fidelity (1000 rows at rung 1)
    assert sorted({(r.index, r.samples) for r in searched}) == [(1, 1000), (2, 2000), (3, 4000), (4, 8000)]
    assert {r.families for r in searched} == {()}  # one study per rung, over both families
    assert [r.study_name for r in searched] == ["rung-1", "rung-2", "rung-3", "rung-4"]
    # each rung first tries every family's best shape of the rung below, at the top of its budget
    for rung in searched[1:]:
        assert [p["family"] for p in rung.warm_start] == ["unimixing_lite", "wukong"]
        for point in rung.warm_start:
            below = [r for r in outcome.trials if r.is_search and r.rung == rung.index - 1]
            best = min((r for r in below if r.family == point["family"]), key=lambda r: r.val_logloss)
            knobs = {k.split("/")[1]: v for k, v in point.items() if "/" in k}
            assert knobs == {k: best.knobs[k] for k in knobs} and point["cost_level"] == 1.0
    (measured,) = [r for r in search.rungs_run if r.fixed]  # after every search: the measurements
    assert search.rungs_run[-1] is measured
    roles = sorted((t.role, t.rung) for t in measured.fixed)
    # per family: a quarter-data point on each rung, SEED_REPLICATES (1) more seeds on each rung but the top
    assert roles.count(("data", 1)) == 2 and roles.count(("seed", 3)) == 2 and ("seed", 4) not in roles
    assert len(measured.fixed) == 2 * (4 + 1 * 3) and summary.planned_trials == 16 + 14 == summary.trials
    assert summary.mode == "ladder" and not summary.interrupted
    scaling = json.loads((Path(plan.out) / "scaling.json").read_text())
    families = scaling["families"]
    assert set(families) == {"unimixing_lite", "wukong"}
    lite, wukong = families["unimixing_lite"], families["wukong"]
    assert lite["interval"][1] < wukong["interval"][1]
    assert scaling["chosen_family"] == "unimixing_lite"
    probabilities = scaling["family_probabilities"]
    assert probabilities == summary.family_probabilities and sum(probabilities.values()) == pytest.approx(1.0)
    assert probabilities["unimixing_lite"] >= ladder_outcome.DECISIVE_PROBABILITY > probabilities["wukong"]
    for family in (lite, wukong):
        assert family["interval"][0] <= family["predicted_logloss"] <= family["interval"][1]
        assert family["interval_method"] and family["prior"]["floor_low"] > 0  # synthetic: the Bayes floor
    chosen = summary.chosen
    assert chosen.model.family == "unimixing_lite" and chosen.predicted
    assert chosen.val_logloss == lite["predicted_logloss"]
    assert list(chosen.val_logloss_interval) == lite["interval"]
    low, high = chosen.val_logloss_interval
    assert low <= chosen.val_logloss <= high
    assert FILL_LOW * 2.4e7 <= chosen.certificate.flops_fvcore <= 2.4e7
    for family in (lite, wukong):
        # the best trial of each rung and its quarter-data point; the held-out check passes on a planted law
        assert [p["role"] for p in family["points"]] == ["search", "data"] * 4
        diagonal = [p for p in family["points"] if p["role"] == "search"]
        assert [p["samples"] for p in diagonal] == [1000, 2000, 4000, 8000]
        assert [p["flops"] for p in diagonal] == sorted(p["flops"] for p in diagonal)
        assert family["held_out"]["passed"] and family["held_out"]["step"] == {
            "flops": pytest.approx(4, rel=0.2),
            "data": 2,
        }
        assert family["target_samples"] == summary.train_samples
    # the noise measured by the seed replicates, pooled: 2 families x 3 rungs x 1 degree of freedom
    assert scaling["noise"]["replicate_dof"] == 6 and 0 < scaling["noise"]["sd"] < 0.01
    assert lite["prior"]["replicate_dof"] == 6
    assert summary.held_out.keys() == {"unimixing_lite", "wukong"}
    assert load_config(Path(plan.out) / "chosen.yaml") == chosen.model
    with (Path(plan.out) / "pareto.csv").open() as handle:
        pareto = list(csv.DictReader(handle))
    targets = [r for r in pareto if r["scale"] == "target"]
    assert {r["family"] for r in targets} == {"unimixing_lite"}  # wukong's target is dominated
    assert all(r["predicted"] == "val_logloss" for r in targets)
    assert {r["scale"] for r in pareto} == {"proxy", "target"}


def test_ctrl_c_during_a_ladder_marks_the_run_interrupted_and_resume_finishes_it(tmp_path, no_report_no_certify):
    plan = ladder_plan(tmp_path)
    outcome = run_plan(plan, search=ladder_search(interrupt_after=5).runner)
    summary = json.loads((Path(plan.out) / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["mode"] == "ladder" and summary["chosen"] is None
    assert summary["trials"] == 5 and summary["planned_trials"] == 16 + 14 == outcome.summary.planned_trials
    assert not (Path(plan.out) / "scaling.json").exists()  # no scale-up from a partial ladder
    resumed = run_plan(plan, resume=True, search=ladder_search().runner)
    assert not resumed.summary.interrupted and resumed.summary.trials == 16 + 14
    assert resumed.summary.chosen.model.family == "unimixing_lite"


def test_cli_ctrl_c_during_a_ladder_exits_130_with_the_resume_command(tmp_path, monkeypatch, no_report_no_certify):
    fake = ladder_search(interrupt_after=3)
    monkeypatch.setattr(plan_module, "run_plan", functools.partial(run_plan, search=fake.runner))
    out = tmp_path / "run"
    args = "--flops 2.4e7 --proxy-max-flops 1.5e6 --fidelity 1000 --families unimixing_lite --families wukong"
    result = CliRunner().invoke(app, [*args.split(), "--trials", "30", "--out", str(out)])
    assert result.exit_code == 130, result.output
    assert f"unimixer-plan --resume {out}" in result.stderr and "Traceback" not in result.output
    assert json.loads((out / "summary.json").read_text())["interrupted"] is True


def test_a_plan_with_real_certify_and_report_writes_every_file(tmp_path):
    # The one fast test with fvcore, the latency benchmark and the HTML report for real.
    plan = direct_plan(tmp_path, trials=len(DIRECT_SCRIPT))
    outcome = run_plan(plan, search=ScriptedSearch(direct_script).runner)
    certificate = outcome.summary.chosen.certificate
    assert certificate.flops_fvcore == certificate.flops_analytic <= 3e5
    assert math.isfinite(certificate.latency_ms) and certificate.latency_ms > 0
    for name in ("plan.json", "trials.csv", "pareto.csv", "chosen.yaml", "summary.json", "report.html"):
        assert (Path(plan.out) / name).is_file(), name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ray_address_is_checked_before_anything_runs(tmp_path):
    port = free_port()  # closed again: nothing listens there
    with pytest.raises(PlanError, match=f"--ray-address 127.0.0.1:{port}: no Ray head reachable"):
        check_ray_address(f"127.0.0.1:{port}")
    for bad in ("nohost", "host:", ":6379", "host:99999", "host:port"):
        with pytest.raises(PlanError, match="expected HOST:PORT"):
            ray_address_endpoint(bad)
    assert ray_address_endpoint("auto") is None
    assert ray_address_endpoint("ray://127.0.0.1:10001") == ("127.0.0.1", 10001)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        check_ray_address(f"127.0.0.1:{listener.getsockname()[1]}")  # something listens: accepted
    plan = PlanConfig(
        budget=Budget(flops=2e6), data=SMALL_DATA, out=str(tmp_path / "run"), ray_address=f"127.0.0.1:{port}"
    )
    search = ScriptedSearch(direct_script)
    with pytest.raises(PlanError, match="--ray-address"):
        run_plan(plan, search=search.runner)
    assert search.rungs_run == [] and not (tmp_path / "run").exists()  # nothing loaded or written


def test_cli_unreachable_ray_address_exits_2_with_one_line_in_process(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["--flops", "2e6", "--ray-address", address, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: --ray-address {address}: no Ray head reachable there (connection refused); "
        "start one with `ray start --head` or omit --ray-address for a local Ray"
    ]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cli_unreachable_ray_address_exits_2_in_seconds_with_one_line(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    start = time.monotonic()
    result = subprocess.run(
        [EXE, "--flops", "2e6", "--trials", "3", "--ray-address", address, "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 2, result.stderr
    assert elapsed < 30
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: --ray-address {address}: "), result.stderr
    assert not (tmp_path / "run").exists()


def modelled_latency_ms(model, batch_size, device, min_run_time=0.2, warmup=3) -> float:
    """A stand-in for the latency benchmark: 1 ms per 2e8 FLOPs of the batch (a fixed machine)."""
    return analytic_cost(model.config).flops * batch_size / 2e8


def test_a_latency_budget_shrinks_the_scaled_up_config_until_it_holds(tmp_path, monkeypatch, no_report_no_certify):
    monkeypatch.setattr("unimixer_plan.scaling.ladder.measure_latency_ms", modelled_latency_ms)
    monkeypatch.setattr(plan_module, "measure_latency_ms", modelled_latency_ms)
    plan = ladder_plan(tmp_path, budget=Budget(flops=2.4e7, params=1e9, latency_ms=0.5, batch_size=8))
    outcome = run_plan(plan, search=ladder_search().runner)
    scaling = json.loads((Path(plan.out) / "scaling.json").read_text())
    for family in scaling["families"].values():
        # 2.4e7 FLOPs at batch 8 would take 0.96 ms: the target shrinks to within 0.5 ms
        assert family["target_latency_ms"] <= 0.5
        assert family["target_flops"] == pytest.approx(family["target_latency_ms"] * 2e8 / 8)
        assert family["target_flops"] < FILL_LOW * 2.4e7
    chosen = outcome.summary.chosen
    assert chosen.certificate.flops_fvcore == scaling["families"][chosen.model.family]["target_flops"]
    with (Path(plan.out) / "pareto.csv").open() as handle:
        targets = [r for r in csv.DictReader(handle) if r["scale"] == "target"]
    family = scaling["families"][targets[0]["family"]]
    assert float(targets[0]["latency_ms"]) == pytest.approx(family["target_latency_ms"])
    certificate = chosen.certificate
    assert chosen.margins == pytest.approx(
        {"flops": 1 - certificate.flops_fvcore / 2.4e7, "params": 1 - certificate.params_dense / 1e9, "latency_ms": 0.0}
    )  # fast_certify's latency is 0.5 ms, the budget's own value


def test_only_ok_rows_at_full_fidelity_within_every_budget_can_be_chosen(tmp_path, monkeypatch, no_report_no_certify):
    monkeypatch.setattr(plan_module, "measure_latency_ms", modelled_latency_ms)
    script = [
        Scripted("wukong", WUKONG, 0.3, 0.40, status=TrialStatus.STOPPED, fidelity_share=0.5, latency_ms=1.0),  # halted
        Scripted("wukong", WUKONG, 0.3, 0.41, status=TrialStatus.FAILED, latency_ms=1.0),  # failed at the end
        Scripted("wukong", WUKONG, 0.9, 0.42, latency_ms=1.0, within_params=False),  # over the params budget
        Scripted("wukong", WUKONG, 0.2, 0.45, latency_ms=1.0),
        Scripted("wukong", WUKONG, 0.1, 0.50, latency_ms=1.0),
    ]
    plan = direct_plan(tmp_path, trials=len(script), params=20_000, latency_ms=2.0)
    outcome = run_plan(plan, search=ScriptedSearch(lambda r, k: script[k]).runner)
    rows = RunFolder(Path(plan.out)).load_trials()
    assert rows[2].params_dense > 20_000 >= rows[3].params_dense, "the script must straddle the budget"
    chosen = outcome.summary.chosen
    assert chosen.trial_id == 3
    assert set(chosen.to_dict()) == {
        "trial_id", "model", "predicted", "val_logloss", "val_auc", "fidelity", "flops_fvcore", "flops_analytic",
        "step_flops", "params_dense", "params_embedding", "latency_ms", "batch_size", "device",
        "train_flops_per_batch", "margins", "epochs", "best_epoch", "gain_over_baselines", "embedding_tables",
    }  # fmt: skip
    assert chosen.predicted is False and chosen.val_auc == 0.7
    certificate = chosen.certificate
    assert chosen.margins == pytest.approx(
        {
            "flops": 1 - certificate.flops_fvcore / 3e5,
            "params": 1 - certificate.params_dense / 20_000,
            "latency_ms": 0.75,
        }
    )
    assert outcome.folder == RunFolder(Path(plan.out)) and outcome.trials == rows
    saved = yaml.safe_load((Path(plan.out) / "chosen.yaml").read_text())
    assert saved["metrics"]["validation"]["val_logloss"] == 0.45 and saved["budget"]["params"] == 20_000


def test_plan_rungs_direct_and_ladder():
    from unimixer_plan.plan import DIRECT_SEARCH_MAX_FLOPS, plan_rungs, planned_measurements
    from unimixer_plan.scaling.ladder import LADDER_MIN_COST_LEVEL
    from unimixer_plan.search.rungs import Rung
    from unimixer_plan.search_spaces import load_spaces, smallest_config

    spaces = {f: s for f, s in load_spaces().items() if f in ("unimixing_lite", "wukong")}
    schema = cached_data(SMALL_DATA, 1000).schema
    rows = 10**6  # training rows available

    def config(budget: Budget, trials: int = 24, top: float = 1.5e6) -> PlanConfig:
        return PlanConfig(budget=budget, data=SMALL_DATA, trials=trials, fidelity=1000, proxy_max_flops=top)

    def rungs(plan: PlanConfig, available: int = rows) -> list[Rung]:
        return plan_rungs(plan, spaces, schema, available)

    assert rungs(config(Budget(flops=1.5e6))) == [Rung(0, 1.5e6, 1.5e6, "plan", 24, False, samples=1000)]
    with_latency = config(Budget(flops=1e6, latency_ms=3.0), trials=5)
    assert rungs(with_latency) == [Rung(0, 1e6, 1e6, "plan", 5, True, samples=1000)]
    assert rungs(config(Budget(params=1e5))) == [Rung(0, None, 1.5e6, "plan", 24, False, samples=1000)]
    wide = rungs(config(Budget(params=1e5), top=1e12))
    assert wide == [Rung(0, None, DIRECT_SEARCH_MAX_FLOPS, "plan", 24, False, samples=1000)]
    assert rungs(config(Budget(flops=1.5e6)), available=600)[0].samples == 600  # a small file caps the rows
    ladder = rungs(config(Budget(flops=2.4e7), trials=39))
    budgets = [2.4e7 / 4**k for k in (5, 4, 3, 2)]
    assert ladder == [
        Rung(k + 1, b, b, f"rung-{k + 1}", n, False, (), LADDER_MIN_COST_LEVEL, samples=1000 * 2**k)
        for k, (b, n) in enumerate(zip(budgets, (7, 6, 6, 6), strict=True))
    ]  # one study per rung over both families; the cheapest rung takes the remainder
    # --trials is the total: 25 search trials and 2 x (4 + 3) measurements of the rungs' best shapes
    assert sum(r.trials for r in ladder) + planned_measurements(ladder, spaces) == 39
    with pytest.raises(PlanError, match=r"^--trials 21: a ladder of 4 rungs over 2 families needs at least 22: "):
        rungs(config(Budget(flops=2.4e7), trials=21))
    assert sum(r.trials for r in rungs(config(Budget(flops=2.4e7), trials=22))) == 8  # one per family and rung
    capped = rungs(config(Budget(flops=2.4e7), trials=39), available=3000)
    assert [r.samples for r in capped] == [1000, 2000, 3000, 3000]
    bottom = 2 * analytic_cost(smallest_config(spaces, schema)).flops  # the ladder's lowest rung
    assert len(rungs(config(Budget(flops=66 * bottom), top=16.5 * bottom))) == 3
    with pytest.raises(PlanError, match=r"^--flops .*: no proxy ladder of 3 rungs fits"):
        rungs(config(Budget(flops=17.6 * bottom), top=4.4 * bottom))


def test_without_a_proxy_cap_the_top_rung_is_the_largest_whose_training_fits():
    from unimixer_plan.scaling.ladder import PROXY_TRAIN_FLOPS_CPU, ladder_rungs, training_flops

    plan = PlanConfig(budget=Budget(flops=2e9), fidelity=8192)
    ladder = ladder_rungs(2e9, plan, bottom=1.5e4, available=10**7)
    assert [b for b, _ in ladder] == pytest.approx([2e9 / 4**k for k in (8, 7, 6, 5)])
    assert [n for _, n in ladder] == [8192, 16384, 32768, 65536]
    assert training_flops(*ladder[-1]) <= PROXY_TRAIN_FLOPS_CPU < training_flops(4 * ladder[-1][0], 65536)
    gpu = ladder_rungs(2e9, replace(plan, gpus_per_trial=1), bottom=1.5e4, available=10**7)
    assert gpu[-1][0] > 4 * ladder[-1][0]  # a GPU trial may cost 100x: the ladder reaches higher


def test_ladder_run_folder_records(tmp_path, no_report_no_certify):
    plan = ladder_plan(tmp_path)
    outcome = run_plan(plan, search=ladder_search().runner)
    out = Path(plan.out)
    text = (out / "scaling.json").read_text()
    scaling = json.loads(text)
    assert text == json.dumps(scaling, indent=2) + "\n"  # readable: one key per line
    budgets = [2.4e7 / 4**k for k in (5, 4, 3, 2)]
    assert scaling["rungs"] == [
        {"rung": k + 1, "flops_budget": pytest.approx(b), "samples": 1000 * 2**k} for k, b in enumerate(budgets)
    ]
    assert scaling["target"] == plan.to_dict()["budget"] | {"train_samples": CRITEO_KAGGLE_TRAIN_ROWS}
    assert scaling["model"] == ladder_outcome.LAW and "N = distinct training samples" in scaling["model"]
    # each study's trials receive a prefix of the training rows, recorded once with its digest
    trial_rows = json.loads((out / "trial_rows.json").read_text())
    assert {k: v["train_rows"] for k, v in trial_rows.items()} == {
        "rung-1": [0, 1000], "rung-2": [0, 2000], "rung-3": [0, 4000], "rung-4": [0, 8000],
        MEASUREMENT_STUDY: [0, 4000],  # the largest: rung 3's seed repeats (rung 4 has only a quarter-data point)
    }  # fmt: skip
    assert scaling["choice_rule"] == ladder_outcome.CHOICE_RULE and "probability" in scaling["choice_rule"]
    summary = outcome.summary
    assert outcome.folder == RunFolder(out) and len(outcome.trials) == 16 + 14
    assert summary.rungs == scaling["rungs"]
    with (out / "pareto.csv").open() as handle:
        pareto = list(csv.DictReader(handle))
    proxies = [r for r in pareto if r["scale"] == "proxy"]
    assert summary.pareto_size == len(proxies) > 0 and all(r["predicted"] == "" for r in proxies)
    lite = scaling["families"]["unimixing_lite"]
    [target] = [r for r in pareto if r["scale"] == "target"]
    assert target["status"] == "ok" and int(target["flops"]) == lite["target_flops"]
    assert int(target["params_dense"]) == lite["target_params"] and target["latency_ms"] == ""
    chosen = summary.chosen
    assert set(chosen.to_dict()) == {
        "trial_id", "model", "predicted", "val_logloss", "val_logloss_interval", "val_auc", "fidelity", "held_out",
        "fit", "proxy_points", "extrapolation", "top_proxy", "compute_pays", "flops_fvcore", "flops_analytic",
        "step_flops", "params_dense", "params_embedding", "latency_ms", "batch_size", "device",
        "train_flops_per_batch", "margins", "gain_over_baselines", "embedding_tables",
    }  # fmt: skip
    largest_proxy = max(p["flops"] for p in lite["points"])
    expected = {
        "flops": pytest.approx(chosen.certificate.flops_fvcore / largest_proxy),
        "data": pytest.approx(CRITEO_KAGGLE_TRAIN_ROWS / 8000),
    }
    assert chosen.extrapolation == expected
    assert json.loads((out / "summary.json").read_text())["extrapolation"] == chosen.extrapolation
    assert chosen.extrapolation["flops"] > 4  # the target sits at least one rung beyond the largest proxy
    # the prediction is for the production data (the Kaggle file's training split by default), not the proxies'
    assert chosen.trial_id is None and chosen.val_auc is None and chosen.fidelity == CRITEO_KAGGLE_TRAIN_ROWS
    assert summary.train_samples == CRITEO_KAGGLE_TRAIN_ROWS
    assert chosen.top_proxy["fidelity"] == 8000 and chosen.top_proxy["trial_id"] in {
        p["trial_id"] for p in lite["points"]
    }
    assert chosen.fit == lite["fit"] and chosen.proxy_points == lite["points"]
    assert chosen.held_out.to_dict() == lite["held_out"] and chosen.held_out == summary.held_out["unimixing_lite"]
    assert chosen.margins == pytest.approx({"flops": 1 - chosen.certificate.flops_fvcore / 2.4e7})
    saved = yaml.safe_load((out / "chosen.yaml").read_text())
    assert saved["metrics"]["predicted"]["val_logloss"] == chosen.val_logloss
    assert saved["metrics"]["predicted"]["val_logloss_interval_90"] == list(chosen.val_logloss_interval)
    # what `unimixer-plan train chosen.yaml` reproduces: the production data the prediction is for
    assert saved["setting"] == plan_setting(plan, CRITEO_KAGGLE_TRAIN_ROWS)


def test_a_ladder_without_full_fidelity_trials_chooses_nothing(tmp_path, no_report_no_certify):
    def stopped(rung, k):
        return replace(ladder_script(rung, k), status=TrialStatus.STOPPED, fidelity_share=1 / 3)

    outcome = run_plan(ladder_plan(tmp_path), search=ScriptedSearch(stopped).runner)
    scaling = json.loads((Path(outcome.summary.run_dir) / "scaling.json").read_text())
    assert outcome.summary.chosen is None and scaling["chosen_family"] is None
    assert all(f["fit"] is None and "no fit" in f["note"] for f in scaling["families"].values())
    assert not (Path(outcome.summary.run_dir) / "chosen.yaml").exists()


def rising_ladder_plan(tmp_path: Path) -> PlanConfig:
    """Five rungs (2.3e4 to 6e6 FLOPs/sample), two search trials per (rung, family) and 18 measurements."""
    return replace(ladder_plan(tmp_path, trials=38, budget=Budget(flops=9.6e7, batch_size=8)), proxy_max_flops=6e6)


def evidence_law(family: str, flops: float, samples: float, wukong_floor: float) -> float:
    floor = 0.44 if family == "unimixing_lite" else wukong_floor
    return floor + 0.25 * (flops / 1e4) ** -0.3 + 0.3 * (samples / 1e3) ** -0.3


def evidence_search(
    wukong_floor: float, wukong_noise: tuple[float, float, float], wukong_first_rung: int = 3, seed_noise: float = 0.002
) -> ScriptedSearch:
    """unimixing_lite: five rungs on a clean law. wukong: only its rungs from ``wukong_first_rung`` finish
    (the smaller ones stop early), with noise of the given signs on rungs 3-5, on a law whose floor is
    ``wukong_floor``. Measurements: on each family's law, wukong's with its rung's noise."""

    def script(rung, k):
        family, level = ladder_step(k)
        if family == "unimixing_lite":
            return Scripted(family, LITE, level, lambda flops: evidence_law(family, flops, rung.samples, 0.0))
        if rung.index < wukong_first_rung:
            return Scripted(family, WUKONG, level, 0.6, status=TrialStatus.STOPPED, fidelity_share=1 / 3)
        noise = wukong_noise[rung.index - 3] if rung.index >= 3 else 0.0
        return Scripted(
            family, WUKONG, level, lambda flops: evidence_law(family, flops, rung.samples, wukong_floor) + noise
        )

    def measure(trial, source_loss: float) -> float:
        model = ModelConfig.from_dict(trial.model)
        noise = wukong_noise[trial.rung - 3] if model.family == "wukong" and trial.rung >= 3 else 0.0
        if trial.role == "seed":  # a seed replicate scatters as proxies do (0.002 by default)
            noise += seed_noise * math.sin(
                3.7 * trial.seed + 1.3 * trial.rung + (1.0 if model.family == "wukong" else 0.0)
            )
        return evidence_law(model.family, analytic_cost(model).flops, trial.fidelity, wukong_floor) + noise

    return ScriptedSearch(script, measure=measure)


def test_the_choice_weighs_evidence_not_the_narrowest_interval(tmp_path, no_report_no_certify):
    # wukong: 3 noisy points on a curve 0.02 lower, a wide interval; unimixing_lite: 5 clean points, narrow.
    # The lowest upper bound (the old rule) picks unimixing_lite; wukong is most likely the lower at the target.
    plan = rising_ladder_plan(tmp_path)
    outcome = run_plan(plan, search=evidence_search(0.42, (0.003, -0.003, 0.003)).runner)
    scaling = json.loads((Path(plan.out) / "scaling.json").read_text())
    lite, wukong = scaling["families"]["unimixing_lite"], scaling["families"]["wukong"]
    assert len(lite["points"]) == 2 * 5 and len(wukong["points"]) == 2 * 3
    assert wukong["interval"][1] - wukong["interval"][0] > 1.3 * (lite["interval"][1] - lite["interval"][0])
    assert wukong["interval"][1] > lite["interval"][1]  # the old rule's pick would be unimixing_lite
    probabilities = outcome.summary.family_probabilities
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert probabilities["wukong"] >= ladder_outcome.DECISIVE_PROBABILITY
    assert scaling["chosen_family"] == "wukong" == outcome.summary.chosen.model.family
    assert not any("indistinguishable" in w for w in outcome.summary.warnings)
    saved = json.loads((Path(plan.out) / "summary.json").read_text())
    assert saved["family_probabilities"] == probabilities


def test_indistinguishable_families_are_said_to_be_and_the_tie_break_is_stated(tmp_path, capsys, no_report_no_certify):
    # wukong's points sit on unimixing_lite's own law, rung for rung, and seeds scatter by 0.01: nothing
    # tells the two apart at the target.
    plan = rising_ladder_plan(tmp_path)
    outcome = run_plan(plan, search=evidence_search(0.44, (0.0, 0.0, 0.0), 1, seed_noise=0.01).runner)
    summary = outcome.summary
    probabilities = summary.family_probabilities
    assert max(probabilities.values()) < ladder_outcome.DECISIVE_PROBABILITY
    assert sum(probabilities.values()) == pytest.approx(1.0)
    [warning] = [w for w in summary.warnings if "indistinguishable" in w]
    scaling = json.loads((Path(plan.out) / "scaling.json").read_text())
    medians = {f: a["predicted_logloss"] for f, a in scaling["families"].items()}
    lower = min(medians, key=medians.get)
    assert scaling["chosen_family"] == lower == summary.chosen.model.family
    assert f"chose {lower} by the tie-break" in warning and "lower predicted median" in warning
    assert json.loads((Path(plan.out) / "summary.json").read_text())["warnings"] == list(summary.warnings)
    print_summary(summary)
    printed = capsys.readouterr().out
    assert "P(lowest at target): " in printed and "warning: families indistinguishable" in printed
    factor = summary.chosen.extrapolation
    assert (
        f"extrapolation      : {factor['flops']:,.0f}x the largest proxy's FLOPs/sample and "
        f"{factor['data']:,.0f}x its training data" in printed
    )


def test_the_report_draws_the_plan_s_own_posterior_and_shows_the_probabilities(tmp_path, no_report_no_certify):
    from unimixer_plan.reports.data import load_report_data
    from unimixer_plan.reports.figures import chosen_table

    plan = ladder_plan(tmp_path)
    outcome = run_plan(plan, search=ladder_search().runner)
    scaling = json.loads((Path(plan.out) / "scaling.json").read_text())
    report = load_report_data(plan.out)
    curves = {c.family: c for c in report.scaling}
    names, values = chosen_table(report).data[0].cells.values
    shares = dict(zip(names, values, strict=True))["P(lowest at target)"]
    assert shares.startswith(f"unimixing_lite {outcome.summary.family_probabilities['unimixing_lite']:.2f}")
    assert curves.keys() == scaling["families"].keys()
    for family, entry in scaling["families"].items():
        curve = curves[family]
        assert curve.grid[-1] == pytest.approx(entry["target_flops"])
        # same prior, same per-family seed: the band ends exactly at the plan's interval and median
        assert curve.curve[-1] == pytest.approx(entry["predicted_logloss"])
        assert [curve.band_low[-1], curve.band_high[-1]] == pytest.approx(entry["interval"])
        assert all(lo <= mid <= hi for lo, mid, hi in zip(curve.band_low, curve.curve, curve.band_high, strict=True))


def test_a_family_whose_held_out_check_failed_is_not_chosen_while_another_passed(tmp_path, no_report_no_certify):
    # wukong's law lies 0.02 below unimixing_lite's, but its top rung measured 0.03 above its own law:
    # the law fitted to its lower rungs misses its top rung, and the choice must not rest on it.
    plan = ladder_plan(tmp_path)

    def script(rung, k):
        step = ladder_script(rung, k)
        if step.family == "unimixing_lite":
            return step
        bump = 0.03 if rung.index == 4 else 0.0
        return replace(step, loss=lambda flops: planted_law("unimixing_lite", flops, rung.samples) - 0.02 + bump)

    def measure(trial, source_loss: float) -> float:
        model = ModelConfig.from_dict(trial.model)
        shift = -0.02 + (0.03 if trial.rung == 4 else 0.0) if model.family == "wukong" else 0.0
        return (
            ladder_measure(trial, source_loss)
            - planted_law(model.family, 1e4, 1e3)
            + planted_law("unimixing_lite", 1e4, 1e3)
            + shift
        )

    outcome = run_plan(plan, search=ScriptedSearch(script, measure=measure).runner)
    summary = outcome.summary
    scaling = json.loads((Path(plan.out) / "scaling.json").read_text())
    wukong, lite = scaling["families"]["wukong"], scaling["families"]["unimixing_lite"]
    assert not wukong["held_out"]["passed"] and lite["held_out"]["passed"]
    assert wukong["misspecification_sd"] > 0  # its interval is widened by the miss
    assert summary.chosen.model.family == "unimixing_lite" == scaling["chosen_family"]
    assert any(w.startswith("held-out check failed for wukong") and "not chosen" in w for w in summary.warnings)


def test_when_the_last_4x_of_flops_buys_nothing_the_summary_says_so(tmp_path, no_report_no_certify, capsys):
    # Compute barely matters on this law (0.002 across the whole ladder): at the production data the
    # budget's last 4x is inside the interval, and the smallest budget within it is named.
    def flat(family, flops, samples):
        return 0.44 + 0.003 * (flops / 1e4) ** -0.3 + 0.3 * (samples / 1e3) ** -0.3

    def script(rung, k):
        step = ladder_script(rung, k)
        return replace(
            step, loss=lambda flops: flat(step.family, flops, rung.samples) + 0.0005 * math.sin(k + rung.index)
        )

    def measure(trial, source_loss):
        model = ModelConfig.from_dict(trial.model)
        return flat(model.family, analytic_cost(model).flops, trial.fidelity) + 0.0005 * math.sin(
            trial.seed + trial.rung
        )

    plan = ladder_plan(tmp_path)
    outcome = run_plan(plan, search=ScriptedSearch(script, measure=measure).runner)
    pays = outcome.summary.chosen.compute_pays
    assert not pays["pays"] and pays["smallest_flops"] <= outcome.summary.chosen.certificate.flops_fvcore / 4
    low, high = pays["interval"]
    assert low <= pays["median_at_quarter"] <= high
    [warning] = [w for w in outcome.summary.warnings if w.startswith("more FLOPs do not pay")]
    assert f"{CRITEO_KAGGLE_TRAIN_ROWS:,} training samples" in warning and f"{pays['smallest_flops']:.3g}" in warning
    # a law on which compute pays says nothing of the kind
    steep = run_plan(replace(plan, out=str(tmp_path / "steep")), search=ladder_search().runner).summary
    assert steep.chosen.compute_pays["pays"] and not any(w.startswith("more FLOPs") for w in steep.warnings)


def test_a_ladder_too_short_for_a_held_out_check_says_its_interval_is_untested(tmp_path, no_report_no_certify):
    # three rungs: refitting without the top leaves two, too few for the law
    plan = replace(ladder_plan(tmp_path), proxy_max_flops=3.75e5)
    summary = run_plan(plan, search=ladder_search().runner).summary
    assert len(summary.rungs) == 3 and summary.chosen.held_out is None
    [warning] = [w for w in summary.warnings if w.startswith("no held-out check")]
    assert f"{summary.chosen.model.family}'s law has points on 2 rung(s)" in warning
    # four rungs: the check runs, and nothing of the kind is said
    four = run_plan(replace(plan, out=str(tmp_path / "four"), proxy_max_flops=1.5e6), search=ladder_search().runner)
    assert len(four.summary.rungs) == 4 and four.summary.chosen.held_out is not None
    assert not any(w.startswith("no held-out check") for w in four.summary.warnings)


def test_cli_families_default_to_the_unimixer_families_and_rankmixer(tmp_path, monkeypatch):
    seen = []

    def capture(plan, **kwargs):
        seen.append(plan.families)
        raise PlanError("captured")

    monkeypatch.setattr(plan_module, "run_plan", capture)
    own_space = tmp_path / "space.yaml"
    own_space.write_text(yaml.safe_dump({"wukong": yaml.safe_load(DEFAULT_SPACE_TEXT)["wukong"]}))
    cases = {
        (): DEFAULT_PLAN_FAMILIES,
        ("--families", "all"): (),  # every family of the space
        ("--families", "wukong", "--families", "attention"): ("wukong", "attention"),
        ("--space", str(own_space)): (),  # a user's own space: all of its families
    }
    for k, extra in enumerate(cases):
        result = CliRunner().invoke(app, ["--flops", "1e6", "--out", str(tmp_path / f"run{k}"), *extra])
        assert result.exit_code == 2 and "captured" in result.output
    assert seen == list(cases.values())
    assert set(DEFAULT_PLAN_FAMILIES) == {"rankmixer", "unimixer", "unimixing_lite"}


def test_a_moved_run_folder_resumes_where_it_is_and_a_copy_leaves_the_original_alone(tmp_path, no_report_no_certify):
    plan = ladder_plan(tmp_path)
    run_plan(plan, search=ladder_search(interrupt_after=5).runner)
    moved = tmp_path / "elsewhere" / "moved-run"
    moved.parent.mkdir()
    shutil.move(plan.out, moved)
    resumed = run_plan(RunFolder(moved).load_plan(), resume=True, search=ladder_search().runner)
    assert resumed.folder == RunFolder(moved) and not resumed.summary.interrupted
    assert resumed.summary.trials == 16 + 14 == len(RunFolder(moved).load_trials())
    assert not Path(plan.out).exists()  # nothing went back to the recorded path
    # a copy of a finished folder resumes as itself: the original's files are not touched
    copy = tmp_path / "copy"
    shutil.copytree(moved, copy)
    before = (moved / "trials.csv").read_bytes(), (moved / "summary.json").read_bytes()
    (copy / "summary.json").unlink()
    assert run_plan(RunFolder(copy).load_plan(), resume=True, search=ladder_search().runner).folder.path == copy
    assert ((moved / "trials.csv").read_bytes(), (moved / "summary.json").read_bytes()) == before
    assert (copy / "summary.json").is_file()


def test_a_torn_last_row_is_cut_on_resume_and_its_trial_runs_again(tmp_path, no_report_no_certify):
    plan = ladder_plan(tmp_path)
    run_plan(plan, search=ladder_search(interrupt_after=5).runner)
    trials = Path(plan.out) / "trials.csv"
    whole = trials.read_bytes()
    last = whole.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    trials.write_bytes(whole + last[: len(last) // 2])  # kill -9 in the middle of an append
    with pytest.raises(PlanError, match="corrupt trial row"):
        RunFolder(Path(plan.out)).load_trials()  # a reader that does not resume says so
    resumed = run_plan(plan, resume=True, search=ladder_search().runner)
    assert not resumed.summary.interrupted and resumed.summary.trials == 16 + 14
    assert trials.read_bytes().startswith(whole) and trials.read_bytes().endswith(b"\n")


def test_resume_takes_runtime_options_again_and_refuses_plan_defining_ones(tmp_path, monkeypatch):
    out = tmp_path / "run"
    RunFolder(out).create(ladder_plan(tmp_path, time_budget_min=3.0), {})
    seen = []

    def capture(plan, **kwargs):
        seen.append(plan)
        raise PlanError("captured")

    monkeypatch.setattr(plan_module, "run_plan", capture)
    result = CliRunner().invoke(app, ["--resume", str(out), "--time-budget", "9", "--verbose"])
    assert result.exit_code == 2 and "captured" in result.output
    plan = seen[0]
    assert (plan.time_budget_min, plan.verbose) == (9.0, True)
    assert plan.families == ("unimixing_lite", "wukong") and plan.budget.flops == 2.4e7  # the recorded plan
    refused = (
        ["--flops", "1e9"],
        ["--families", "rankmixer"],
        ["--seed", "3"],
        ["--out", str(tmp_path)],
        ["--gpus-per-trial", "1"],  # sizes the ladder
        ["--cpus-per-trial", "2"],  # the threads latency is measured with
    )
    for given in refused:
        result = CliRunner().invoke(app, ["--resume", str(out), *given])
        assert result.exit_code == 2 and len(seen) == 1, result.output
        assert result.stderr.startswith(f"Error: {given[0]}: cannot be given with --resume")
        assert "allowed with --resume: --ray-address, --time-budget, --verbose, --json" in result.stderr


def test_a_stale_ray_session_folder_is_removed_on_the_next_start(tmp_path):
    marker = tmp_path / RAY_TEMP_MARKER
    stale = Path(tempfile.mkdtemp(prefix=RAY_TEMP_PREFIX, dir=ray_temp_base()))
    (stale / "session_latest").mkdir()
    marker.write_text(f"{stale}\n")
    remove_stale_ray_dir(marker)
    assert not stale.exists() and not marker.exists()
    # never a folder this planner did not make: each guard alone keeps one
    unprefixed = Path(tempfile.mkdtemp(prefix="not-ours-", dir=ray_temp_base()))
    elsewhere = tmp_path / f"{RAY_TEMP_PREFIX}elsewhere"
    elsewhere.mkdir()
    # nor one a live process still uses (a folder copied while its plan ran)
    live = Path(tempfile.mkdtemp(prefix=RAY_TEMP_PREFIX, dir=ray_temp_base()))
    user = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(live)])
    deadline = time.monotonic() + 30
    while str(live).encode() not in Path(f"/proc/{user.pid}/cmdline").read_bytes():  # until exec is done
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        for kept in (unprefixed, elsewhere, live):
            marker.write_text(f"{kept}\n")
            remove_stale_ray_dir(marker)
            assert kept.is_dir() and not marker.exists(), kept
    finally:
        user.kill()
        user.wait()
        shutil.rmtree(unprefixed)
        shutil.rmtree(live)


def test_resume_cuts_a_torn_curve_row_and_removes_a_table_killed_before_its_first_flush(tmp_path):
    folder = RunFolder(tmp_path)
    folder.trials_file.write_bytes(b"")  # created by open("a"), killed before anything was written
    folder.curves_file.write_bytes(b"trial_id,epoch,samples_seen,val_logloss,val_auc\r\n0,1,64,0.5,0.7\r\n0,2,1")
    folder.drop_torn_rows()
    assert not folder.trials_file.exists() and folder.load_trials() == []
    assert folder.load_curves() == {0: [(1, 64, 0.5, 0.7)]}


def test_cli_json_stdout_holds_only_the_json_whatever_the_search_prints(tmp_path, monkeypatch, no_report_no_certify):
    scripted = ladder_search().runner

    def noisy_rung(*args):
        print("(raylet) A worker died or was killed while executing a task")  # as Ray's driver thread does
        return scripted.run_rung(*args)

    runner = replace(scripted, run_rung=noisy_rung)
    monkeypatch.setattr(plan_module, "run_plan", functools.partial(run_plan, search=runner))
    args = "--flops 2.4e7 --proxy-max-flops 1.5e6 --fidelity 1000 --families unimixing_lite --families wukong"
    result = CliRunner().invoke(app, [*args.split(), "--trials", "30", "--out", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mode"] == "ladder"
    assert "(raylet) A worker died" in result.stderr


@pytest.mark.slow  # no Ray, but fvcore traces the 2e9 target (a 1e9-parameter model) for real
def test_a_2e9_ladder_lands_in_the_flops_band_by_fvcore(tmp_path, monkeypatch):
    monkeypatch.setattr("unimixer_plan.reports.write_report", lambda path: Path(path) / "report.html")
    plan = replace(ladder_plan(tmp_path, budget=Budget(flops=2e9, batch_size=8)), proxy_max_flops=5e5)
    chosen = run_plan(plan, search=ladder_search().runner).summary.chosen
    certificate = chosen.certificate  # fvcore's count of the built target, not the analytic formula
    assert FILL_LOW * 2e9 <= certificate.flops_fvcore <= 2e9
    # the written config rebuilds exactly the certified model
    assert analytic_cost(load_config(Path(plan.out) / "chosen.yaml")).flops == certificate.flops_fvcore
    low, high = chosen.val_logloss_interval
    assert low <= chosen.val_logloss <= high
