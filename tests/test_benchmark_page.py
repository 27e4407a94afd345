"""The benchmarks page and its pieces: the README blocks it rewrites, the offline page, the search
benchmark's replay of the recorded grid and its scoring (benchmarks/ is scripts, loaded by path)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
from unimixer_plan.search_spaces.spaces import parse_spaces

from tests.browser import assert_renders_offline, needs_chromium

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def load(name: str):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


SEARCH = {
    "meta": {"grid_feasible": 20},
    "runs": {
        "planner": [{"hv_ratio": [0.5, 1.0], "train_s": [1, 2]}],
        "random": [{"hv_ratio": [0.2, 0.4], "train_s": [1, 3]}],
    },
}


@pytest.fixture(scope="module")
def render():
    return load("render")


@pytest.fixture(scope="module")
def search_bench():
    return load("search_bench")


def test_readme_blocks_are_replaced_and_nothing_else(render):
    text = "intro\n<!-- bench:search -->\nold\ntable\n<!-- /bench:search -->\nmiddle\n"
    text += "<!-- bench:overhead -->\nkept\n<!-- /bench:overhead -->\nend\n"
    out = render.update_readme(text, {"search": "| a |\n| --- |\n| 1 |"})
    assert out == text.replace("old\ntable", "| a |\n| --- |\n| 1 |")
    assert render.update_readme(out, {"search": "| a |\n| --- |\n| 1 |"}) == out  # idempotent


def test_page_is_offline_with_each_benchmarks_table_and_figures(render):
    throughput = {
        "meta": {"square_matmul_gflops": 50.0},
        "rows": [{"family": "rankmixer", "flops_per_sample": 1e6, "gflops_per_s": 10.0}],
    }
    results = {
        "search": (SEARCH, "caption\n\n| method | HV |\n| --- | ---: |\n| planner | 1.0 |"),
        "throughput": (throughput, "| family |\n| --- |\n| rankmixer |"),
    }
    page = render.page(results)
    assert "<script src=" not in page and "plotly.js v" in page  # plotly.js embedded, nothing fetched
    assert page.count('<div id="search-') == 2 and page.count('<div id="throughput-') == 1
    assert "<th>method</th><th>HV</th>" in page and "<td>planner</td><td>1.0</td>" in page
    assert "<p>caption</p>" in page


@pytest.mark.browser
@needs_chromium
def test_page_renders_in_headless_chromium_offline(render, tmp_path):
    cells = [
        {"family": f, "flops": b, "logloss": {"mean": 0.5, "min": 0.49, "max": 0.51}}
        for f in ("rankmixer", "unimixing_lite")
        for b in (1e5, 2e5)
    ]
    families = {"datasets": {"synthetic": {"cells": cells, "baselines": {"lr": {"logloss": {"mean": 0.52}}}}}}
    results = {name: (data, "| a |\n| --- |\n| 1 |") for name, data in (("search", SEARCH), ("families", families))}
    page = tmp_path / "index.html"
    page.write_text(render.page(results))
    assert_renders_offline(page, expected_figures=3)  # search: 2, families: 1 per dataset


def point(d_model: int, loss: float, history: list[float], seed: int = 0) -> dict:
    model = {"family": "rankmixer", "n_tokens": 4, "d_model": d_model, "depth": 1}
    return {
        "model": model,
        "seed": seed,
        "flops": d_model * 1000,
        "status": "ok",
        "val_logloss": loss,
        "history": [[e + 1, v] for e, v in enumerate(history)],
        "wall_time_s": 2.0 * len(history),
        "epochs": len(history),
        "best_epoch": len(history),
    }


def test_the_replay_is_the_recording_at_recorded_widths_and_interpolates_between(search_bench):
    recorded = [point(16, 0.50, [0.6, 0.5]), point(16, 0.52, [0.6, 0.52, 0.53], seed=1), point(64, 0.40, [0.5, 0.4])]
    grid = search_bench.index_grid(search_bench.grid_points(recorded))
    exact = search_bench.surrogate({**recorded[0]["model"], "d_model": 16}, grid)
    assert exact["val_logloss"] == pytest.approx(0.51)  # the mean over seeds
    assert [v for _, v in exact["history"]] == pytest.approx([0.6, 0.51])  # cut to the shortest seed
    between = search_bench.surrogate({**recorded[0]["model"], "d_model": 32}, grid)  # halfway in log2
    assert between["val_logloss"] == pytest.approx((0.51 + 0.40) / 2)
    assert between["epochs"] == 2


def test_scores_count_trials_to_the_goal(search_bench):
    rows = [
        {"ok": False, "flops": math.nan, "val_logloss": math.nan, "train_s": 0.0},
        {"ok": True, "flops": 100.0, "val_logloss": 0.5, "train_s": 2.0},
        {"ok": True, "flops": 10.0, "val_logloss": 0.4, "train_s": 1.0},
    ]
    scored = search_bench.score(rows, (3.0, 0.6), grid_hv=(3.0 - 1.0) * (0.6 - 0.4))
    assert scored["hv_ratio"] == [0.0, 0.25, 1.0] and scored["train_s"] == [0.0, 2.0, 3.0]
    table = search_bench.summarise({"m": [scored, {**scored, "hv_ratio": [0.0, 0.5, 0.9]}]}, grid_size=20)
    assert table[0]["reached_099"] == 1 and table[0]["trials_to_099"] == [3]
    assert table[0]["hv_at_15pct"][0] == pytest.approx((1.0 + 0.9) / 2)  # 15 % of 20 = 3 trials


def test_stray_or_nested_readme_markers_fail_naming_the_marker(render):
    with pytest.raises(ValueError, match="bench:search --> is never closed"):
        render.update_readme("<!-- bench:search -->\nold\n## Next section\n", {"search": "new"})
    with pytest.raises(ValueError, match="inside the open block 'a'"):
        render.update_readme("<!-- bench:a -->\n<!-- bench:b -->\n<!-- /bench:b -->\n<!-- /bench:a -->\n", {})
    with pytest.raises(ValueError, match="closes no open"):
        render.update_readme("text\n<!-- /bench:a -->\n", {"a": "new"})
    dashed = "<!-- bench:end-to-end -->\nold\n<!-- /bench:end-to-end -->\n"
    assert render.update_readme(dashed, {"end-to-end": "new"}) == dashed.replace("old", "new")


def test_the_time_axis_averages_seeds_at_common_times(render):
    runs = [{"train_s": [1.0, 3.0], "hv_ratio": [0.5, 1.0]}, {"train_s": [2.0, 4.0], "hv_ratio": [0.2, 0.6]}]
    grid, mean = render.hv_against_time(runs, points=5)  # times 0, 1, 2, 3, 4
    assert grid == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert mean == pytest.approx([0.0, 0.25, 0.35, 0.6, 0.8])


def test_plain_samplers_count_only_models_trained(search_bench, monkeypatch):
    schema = {"num_dense": 2, "cardinalities": [10, 10]}
    knobs = {"n_tokens": 4, "heads": 4, "depth": 1, "ffn_ratio": 2}
    recorded = []
    for width in (16, 32, 64, 128):
        model = search_bench.build_config("rankmixer", knobs, width, schema).to_dict()
        recorded.append(point(width, 0.5 - width / 1000, [0.6, 0.5 - width / 1000]) | {"model": model})
    monkeypatch.setattr(search_bench, "GRID", search_bench.index_grid(search_bench.grid_points(recorded)))
    space = {
        "rankmixer": {
            "n_tokens": [4],
            "depth": {"low": 1, "high": 1},
            "ffn_ratio": [2],
            "d_model": {"low": 16, "high": 128},
        }
    }
    monkeypatch.setattr(search_bench, "bench_spaces", lambda: parse_spaces(space, "test"))
    budget = search_bench.analytic_cost(search_bench.build_config("rankmixer", knobs, 64, schema)).flops
    rows = search_bench.run_optuna("random", 0, 3, budget, schema)
    # 3 of the 4 widths fit the budget: 3 trials, each a different one, none over the budget
    assert len(rows) == 3 and len({r["flops"] for r in rows}) == 3 and all(r["flops"] <= budget for r in rows)
    assert search_bench.run_optuna("random", 0, 5, budget, schema) == rows  # asks again until it gives up


def test_front_points_found_and_their_share(search_bench):
    feasible = [
        {"flops": 10.0, "val_logloss": 0.5},
        {"flops": 100.0, "val_logloss": 0.4},
        {"flops": 50.0, "val_logloss": 0.6},
    ]
    objectives = search_bench.np.array([[math.log10(p["flops"]), p["val_logloss"]] for p in feasible])
    reference = (3.0, 0.7)
    grid_hv = search_bench.hypervolume(objectives, reference, search_bench.MIN2)
    front = feasible[:2]
    # without the cheap point: the other two cover 0.3 + 0.1301 - 0.1 of the 0.5; without the best: 0.4
    lost = search_bench.hv_lost_without(front, objectives, feasible, reference, grid_hv)
    assert grid_hv == pytest.approx(2 * 0.2 + 1 * 0.1)
    assert lost == pytest.approx([round(1 - 0.3301 / 0.5, 4), round(1 - 0.4 / 0.5, 4)], abs=2e-4)
    rows = [{"ok": True, "flops": 100.0, "val_logloss": 0.4}, {"ok": False, "flops": 10.0, "val_logloss": 0.5}]
    assert search_bench.front_found(rows, front) == [False, True]  # a stopped trial found nothing
