"""The report: data from a fixture run folder, a real headless-Chromium render, PNG export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from unimixer_plan.data import DataSpec
from unimixer_plan.mixers import capped_criteo_cardinalities
from unimixer_plan.plan_config import Budget, PlanConfig
from unimixer_plan.reports import all_figures, load_report_data, write_pngs, write_report
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.trial_record import TrialRecord, TrialStatus

from tests.browser import CHROMIUM, assert_renders_offline, needs_chromium

CHOSEN_MODEL = {
    "family": "unimixing_lite",
    "n_tokens": 8,
    "d_model": 32,
    "depth": 2,
    "ffn_ratio": 2,
    "heads": 2,
    "rank": 4,
    "bases": 2,
    "num_dense": 13,
    "cardinalities": list(capped_criteo_cardinalities(10_000)),
    "embed_dim": 16,
    "sinkhorn_iters": 20,
    "tau_start": 1.0,
    "tau_end": 0.05,
}


def trial(trial_id, family, flops, loss, status=TrialStatus.OK, fidelity=4000, latency=float("nan")) -> TrialRecord:
    return TrialRecord(
        trial_id=trial_id,
        rung=0,
        optuna_trial=trial_id,
        family=family,
        n_tokens=8,
        d_model=32,
        heads=2 if family != "wukong" else None,
        rank=4,
        bases=2 if family == "unimixing_lite" else None,
        depth=2,
        ffn_ratio=2,
        fidelity=fidelity,
        status=status,
        val_logloss=loss,
        val_auc=0.7,
        flops=flops,
        params_dense=flops // 2,
        latency_ms=latency,
        wall_time_s=1.0,
    )


@pytest.fixture
def run_folder(tmp_path) -> Path:
    plan = PlanConfig(
        budget=Budget(flops=1e6, latency_ms=5.0, batch_size=64),
        data=DataSpec(),
        trials=5,
        fidelity=4000,
        out=str(tmp_path / "run"),
    )
    folder = RunFolder(Path(plan.out))
    folder.create(plan, {"torch": "test"})
    rows = [
        trial(0, "unimixing_lite", 400_000, 0.50, latency=2.0),
        trial(1, "wukong", 100_000, 0.52, latency=1.0),
        trial(2, "wukong", 900_000, 0.55, latency=4.0),
        trial(3, "unimixing_lite", 200_000, 0.60, TrialStatus.STOPPED, 444),
        trial(4, "rankmixer", 2_000_000, float("nan"), TrialStatus.INFEASIBLE, 0),
    ]
    for row in rows:
        folder.append_trial(row)
    folder.write_pareto([rows[1], rows[0]])
    summary = {
        "run_dir": plan.out,
        "mode": "direct",
        "data": "criteo (SYNTHETIC: test)",
        "synthetic": True,
        "trials": 5,
        "trials_by_status": {},
        "pareto_size": 2,
        "interrupted": False,
        "budget": plan.to_dict()["budget"],
        "chosen": {
            "trial_id": 0,
            "model": CHOSEN_MODEL,
            "predicted": False,
            "val_logloss": 0.50,
            "val_auc": 0.7,
            "fidelity": 4000,
            "flops_fvcore": 400_000,
            "params_dense": 200_000,
            "latency_ms": 2.1,
            "batch_size": 64,
            "device": "cpu",
            "margins": {"flops": 0.6, "latency_ms": 0.58},
        },
    }
    folder.summary_file.write_text(json.dumps(summary))
    return folder.path


def test_figure_data_equals_the_run_folder(run_folder):
    data = load_report_data(run_folder)
    assert [t.trial_id for t in data.trials] == [0, 1, 2, 3, 4]
    assert {t.trial_id for t in data.trials if t.on_front} == {0, 1}
    assert [t.trial_id for t in data.trials if t.full_fidelity] == [0, 1, 2]
    assert data.budget["flops"] == 1e6 and data.budget["latency_ms"] == 5.0
    figures = all_figures(data)
    assert {"chosen", "pareto", "three_objectives", "history", "parallel", "latency", "pareto_table"} <= set(figures)
    pareto = figures["pareto"]
    by_name = {trace.name: trace for trace in pareto.data}
    assert list(by_name["wukong (full fidelity)"].x) == [100_000, 900_000]
    assert list(by_name["wukong (full fidelity)"].y) == [0.52, 0.55]
    assert list(by_name["unimixing_lite (stopped early)"].y) == [0.60]  # shown apart from full-fidelity trials
    assert list(by_name["Pareto front (proxies)"].x) == [100_000, 400_000]
    star = by_name["chosen"]
    assert (star.x[0], star.y[0]) == (400_000, 0.50)
    assert json.loads(star.hovertext[0])["d_model"] == 32  # hover shows the whole config
    assert pareto.layout.shapes[0].x0 == 1e6  # the FLOPs budget line
    assert "1 infeasible" in pareto.layout.title.text
    table = figures["chosen"].data[0].cells.values
    assert "unimixing_lite" in table[1] and "+60.0%" in " ".join(table[1])
    latency = {trace.name: trace for trace in figures["latency"].data}
    assert list(latency["trials (measured)"].y) == [2.0, 1.0, 4.0]
    assert figures["latency"].layout.shapes[0].y0 == 5.0
    # history: the best within-budget logloss only improves
    best = [h.best_feasible_logloss for h in data.history]
    assert best[-1] == 0.50 and all(b >= a for a, b in zip(best[1:], best, strict=False))


@pytest.mark.browser
@needs_chromium
def test_report_renders_in_headless_chromium_offline(run_folder):
    page = write_report(run_folder)
    assert_renders_offline(page, expected_figures=len(all_figures(load_report_data(run_folder))))


@pytest.mark.slow  # kaleido starts a Chromium per call: seconds, and many more on a busy machine
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM, reason="PNG export needs Debian's chromium")
def test_png_export(run_folder, tmp_path):
    paths = write_pngs(run_folder, tmp_path / "png")
    assert {p.stem for p in paths} >= {"pareto", "chosen"}
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_cli_errors_are_one_line(tmp_path):
    from typer.testing import CliRunner
    from unimixer_plan.cli import app

    result = CliRunner().invoke(app, ["report", str(tmp_path / "absent")])
    assert result.exit_code == 2 and "not a run folder" in result.output
