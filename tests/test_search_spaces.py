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
from unimixer_plan.search_spaces import (
    CostAwareSpace,
    FamilySpace,
    IntRange,
    Limits,
    load_spaces,
    parse_spaces,
    smallest_config,
    solve_width,
)
from unimixer_plan.search_spaces.cost_aware import family_knobs, fits, narrowest_config, repair, width_multiple

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


def unimixer_space(heads: tuple[int, ...], d_model: IntRange) -> FamilySpace:
    return FamilySpace(
        "unimixer", {"n_tokens": (4,), "heads": heads, "depth": IntRange(1, 4), "ffn_ratio": (2,)}, d_model
    )


def test_widths_are_multiples_of_the_heads_and_the_range_ends_are_allowed():
    knobs = {"n_tokens": 4, "heads": 16, "depth": 1, "ffn_ratio": 2}
    space = unimixer_space((16,), IntRange(8, 64))
    assert narrowest_config(space, knobs, SCHEMA).d_model == 16  # lcm(8, 16), not 8
    assert solve_width(space, knobs, Limits(flops=1e12), SCHEMA).d_model == 64
    assert solve_width(space, knobs, Limits(flops=1e12), SCHEMA).d_model % 16 == 0
    space_20 = unimixer_space((1,), IntRange(20, 64))
    assert narrowest_config(space_20, {**knobs, "heads": 1}, SCHEMA).d_model == 24  # first multiple of 8 >= 20
    single = unimixer_space((1,), IntRange(8, 8))
    assert narrowest_config(single, {**knobs, "heads": 1}, SCHEMA).d_model == 8
    assert solve_width(single, {**knobs, "heads": 1}, Limits(flops=1e12), SCHEMA).d_model == 8
    assert narrowest_config(unimixer_space((1,), IntRange(8, 7)), {**knobs, "heads": 1}, SCHEMA) is None


def test_only_the_narrowest_width_fitting_is_still_found():
    space = unimixer_space((1,), IntRange(8, 64))
    knobs = {"n_tokens": 4, "heads": 1, "depth": 1, "ffn_ratio": 2}
    narrowest = narrowest_config(space, knobs, SCHEMA)
    cost = analytic_cost(narrowest)
    assert solve_width(space, knobs, Limits(flops=cost.flops), SCHEMA) == narrowest  # a budget met exactly fits
    assert solve_width(space, knobs, Limits(params=cost.params_dense), SCHEMA) == narrowest
    assert solve_width(space, knobs, Limits(flops=cost.flops - 1), SCHEMA) is None
    assert fits(narrowest, Limits(flops=cost.flops, params=cost.params_dense))
    assert not fits(narrowest, Limits(params=cost.params_dense - 1))


def test_repair_shrinks_knobs_in_order_only_as_far_as_needed():
    space = unimixer_space((1, 2), IntRange(8, 64))
    knobs = {"n_tokens": 4, "heads": 2, "depth": 4, "ffn_ratio": 2}
    assert repair(space, knobs, Limits(flops=1e9), SCHEMA) == knobs  # fits already: untouched
    one_block = analytic_cost(narrowest_config(space, {**knobs, "depth": 1}, SCHEMA)).flops
    repaired = repair(space, knobs, Limits(flops=one_block), SCHEMA)
    assert repaired == {**knobs, "depth": 1}  # depth goes first, and alone suffices
