from __future__ import annotations

import random

import optuna
import pytest
from unimixer_plan.mixers import (
    ModelConfig,
    PlanError,
    analytic_cost,
    capped_criteo_cardinalities,
    list_searchable,
)
from unimixer_plan.search_spaces import CostAwareSpace, Limits, load_spaces, parse_spaces, smallest_config, solve_width
from unimixer_plan.search_spaces.cost_aware import family_knobs, width_multiple

SCHEMA = {"num_dense": 13, "cardinalities": capped_criteo_cardinalities(1000)}


def test_default_space_covers_every_searchable_family():
    assert sorted(load_spaces()) == list_searchable()


def test_a_space_naming_a_baseline_is_refused():
    with pytest.raises(PlanError, match="family 'lr' is a baseline, not searched; searchable: attention"):
        parse_spaces({"lr": {"n_tokens": [4]}}, "space.yaml")


@pytest.mark.parametrize("family", list_searchable())
def test_solved_width_is_the_widest_that_fits(family):
    space = load_spaces()[family]
    rng = random.Random(family)
    for _ in range(20):
        knobs = {
            k: (rng.choice(d) if isinstance(d, tuple) else rng.randint(d.low, d.high)) for k, d in space.knobs.items()
        }
        knobs = family_knobs(space, knobs)
        limits = Limits(flops=10 ** rng.uniform(5, 8), params=10 ** rng.uniform(5, 7))
        config = solve_width(space, knobs, limits, SCHEMA)
        if config is None:
            continue
        cost = analytic_cost(config)
        assert cost.flops <= limits.flops and cost.params_dense <= limits.params
        wider = config.d_model + width_multiple(knobs.get("heads"))
        if wider <= space.d_model.high:
            bigger = analytic_cost(config.replace(d_model=wider))
            assert bigger.flops > limits.flops or bigger.params_dense > limits.params


def test_every_sampled_candidate_fits_the_analytic_budgets():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spaces = load_spaces()
    limits = Limits(flops=2e6, params=3e5)
    space = CostAwareSpace(spaces, limits, ceiling_flops=2e6, schema=SCHEMA)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    feasible = 0
    for _ in range(150):
        trial = study.ask()
        out = space(trial)
        study.tell(trial, [0.5, 1.0])
        if out["feasible"]:
            feasible += 1
            cost = analytic_cost(ModelConfig.from_dict(out["model"]))
            assert cost.flops <= 2e6 and cost.params_dense <= 3e5
    assert feasible >= 100  # the parametrisation wastes few samples on infeasible sizes


def test_smallest_config_is_the_cheapest_corner():
    cheapest = smallest_config(load_spaces(), SCHEMA)
    assert cheapest.depth == 1 and cheapest.ffn_ratio == 1


D_MODEL = {"d_model": {"low": 8, "high": 64}}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"mlp": {}}, "family 'mlp' is unknown"),
        (
            {"unimixer": {"n_tokens": [4], "heads": [2], "depth": {"low": 1, "high": 2}, "ffn_ratio": [1]}},
            "needs a domain for d_model",
        ),
        (
            {"rankmixer": {"n_tokens": [4], "heads": [4], "depth": [1], "ffn_ratio": [1], **D_MODEL}},
            "rankmixer.heads is not a knob",
        ),
        ({"wukong": {"n_tokens": [0], "rank": [2], "depth": [1], "ffn_ratio": [1], **D_MODEL}}, "wukong.n_tokens=[0]"),
    ],
)
def test_bad_space_files_are_named(data, fragment):
    with pytest.raises(PlanError) as info:
        parse_spaces(data, "--space my.yaml")
    assert fragment in str(info.value) and str(info.value).startswith("--space my.yaml")


def test_user_space_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "attention:\n  n_tokens: [4]\n  heads: [2]\n  depth: {low: 1, high: 2}\n  ffn_ratio: [2]\n"
        "  d_model: {low: 8, high: 64}\n"
    )
    spaces = load_spaces(path)
    assert list(spaces) == ["attention"]
    with pytest.raises(PlanError, match="does not exist"):
        load_spaces(tmp_path / "absent.yaml")
