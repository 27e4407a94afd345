"""The auto-scaling planner: proxy ladder, scaling fits, held-out check, scale-up to the budget.

The real-Ray ladders are marked slow; the ladder's decisions (fits, choice at the target, latency
shrink, interruption) are covered fast through the search seam in test_plan_logic.py.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from unimixer_plan.mixers import analytic_cost, capped_criteo_cardinalities, load_config
from unimixer_plan.scaling.ladder import FILL_LOW, fill_budget, snap
from unimixer_plan.search_spaces import IntRange, Limits, load_spaces

EXE = str(Path(sys.executable).with_name("unimixer-plan"))
SCHEMA = {"num_dense": 13, "cardinalities": capped_criteo_cardinalities(10_000)}


# Small ladders: proxies capped at 3.75e5-2e6 FLOPs, 1,000 samples on the first rung (doubling per rung),
# so each trains in seconds.
SMALL_LADDER = (
    "--flops 2.4e7 --proxy-max-flops 3.75e5 --fidelity 1000 --families unimixing_lite --families wukong "
    "--trials 22 --seed 3"
)
LATENCY = (
    "--flops 1e8 --proxy-max-flops 4e5 --batch-size 16 --device cpu --fidelity 1000 "
    "--families unimixing_lite --trials 11 --test-seeds 0"
)


def plan_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=900)


def test_snap_and_fill_budget_land_in_the_band():
    assert snap((4, 8, 16, 32), 11.0) == 8 and snap((4, 8, 16, 32), 12.0) == 16
    assert snap(IntRange(1, 6), 9.4) == 6
    space = load_spaces()["unimixing_lite"]
    knobs = {"n_tokens": 16, "heads": 4, "rank": 16, "bases": 4, "depth": 2, "ffn_ratio": 2}
    for budget in (3e7, 2e9, 5e10):
        config = fill_budget(space, knobs, Limits(flops=budget), SCHEMA)
        assert FILL_LOW * budget <= analytic_cost(config).flops <= budget


@pytest.fixture(scope="module")
def small_ladder(tmp_path_factory):
    out = tmp_path_factory.mktemp("ladder") / "run"
    result = plan_cli(*SMALL_LADDER.split(), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


@pytest.mark.slow
def test_small_ladder_writes_fits_and_the_held_out_error(small_ladder):
    out, summary = small_ladder
    scaling = json.loads((out / "scaling.json").read_text())
    assert summary["mode"] == "ladder" and len(scaling["rungs"]) == 3
    budgets = [r["flops_budget"] for r in scaling["rungs"]]
    assert budgets == pytest.approx([2.4e7 / 4**k for k in (5, 4, 3)])
    assert [r["samples"] for r in scaling["rungs"]] == [1000, 2000, 4000]
    fitted = [f for f in scaling["families"].values() if f["fit"] is not None]
    assert fitted, scaling
    for family in fitted:
        assert len(family["points"]) >= 3
        assert family["interval"][0] <= family["predicted_logloss"] <= family["interval"][1]
    # three rungs are too few to refit the law without the top one: no check, and the summary says so
    assert all(f["held_out"] is None for f in fitted) and not summary.get("held_out")
    assert any(w.startswith("no held-out check") and "on 2 rung(s) below" in w for w in summary["warnings"])
    # trials only ever train within their rung's budget
    with (out / "trials.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["status"] in ("ok", "stopped"):
            assert int(row["flops"]) <= budgets[int(row["rung"]) - 1]
    # the measurements ran for real: quarter-data points and seed replicates, on the rows they name
    roles = {(r["role"], r["rung"], r["fidelity"], r["seed"]) for r in rows if r["role"] != "search"}
    assert ("data", "1", "250", "3") in roles and ("seed", "2", "2000", "4") in roles
    curves = list(csv.DictReader((out / "curves.csv").read_text().splitlines()))
    assert {int(r["trial_id"]) for r in curves} >= {int(r["trial_id"]) for r in rows if r["status"] == "ok"}
    with (out / "pareto.csv").open() as handle:
        pareto = list(csv.DictReader(handle))
    assert {r["scale"] for r in pareto} == {"proxy", "target"}
    assert all(r["predicted"] == "val_logloss" for r in pareto if r["scale"] == "target")
    chosen = summary["chosen"]
    assert chosen["predicted"] and chosen["val_logloss_interval"][0] <= chosen["val_logloss"]
    assert FILL_LOW * 2.4e7 <= chosen["flops_fvcore"] <= 2.4e7
    # the chosen target is not a trial: export takes it from the summary, with predicted metrics
    exported = out / "export.yaml"
    assert plan_cli("export", str(out), "--out", str(exported)).returncode == 0
    assert load_config(exported).to_dict() == chosen["model"]
    assert "predicted:" in exported.read_text()
    assert (out / "report.html").is_file()
    # the target is too large to re-train: the two families' best top-rung proxies go to the test split
    check = summary["test"]
    assert check["subject"].startswith("the best top-rung proxies")
    assert {check["chosen"]["family"], check["runner_up"]["family"]} == {"unimixing_lite", "wukong"}
    assert check["chosen"]["family"] == chosen["model"]["family"] and check["chosen"]["fidelity"] == 4000
    assert "test split (" in plan_cli("--resume", str(out)).stdout  # the terminal summary prints it, re-used


@pytest.mark.slow
def test_a_latency_budget_constrains_the_scaled_up_config(tmp_path):
    out = tmp_path / "run"
    budget_ms = 4.0
    result = plan_cli(*LATENCY.split(), "--latency-ms", str(budget_ms), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    scaling = json.loads((out / "scaling.json").read_text())
    family = scaling["families"]["unimixing_lite"]
    assert family["target_latency_ms"] <= budget_ms  # measured on the full-size model
    # the latency budget binds: the scaled-up model uses well under the FLOPs budget
    assert family["target_flops"] < 0.95e8
    assert summary["chosen"]["flops_fvcore"] == family["target_flops"]
