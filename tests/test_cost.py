"""The analytic cost model equals fvcore's count exactly (x2), for every family."""

from __future__ import annotations

import random

import pytest
from unimixer_plan.mixers import analytic_cost, build_model, list_mixers
from unimixer_plan.profiling import measure_flops, profile

from tests.conftest import random_config, small_config

CONFIGS_PER_FAMILY = 30


@pytest.mark.parametrize("family", list_mixers())
@pytest.mark.parametrize("count", [2, pytest.param(CONFIGS_PER_FAMILY, marks=pytest.mark.slow)])  # fvcore: ~0.3 s each
def test_analytic_flops_equal_twice_fvcore_on_random_configs(family, count):
    rng = random.Random(f"cost-{family}")
    seen = set()
    for _ in range(count):
        config = random_config(family, rng)
        seen.add(config)
        model = build_model(config)
        flops, step_flops = measure_flops(model)
        cost = analytic_cost(config)
        assert flops == cost.flops, config
        assert step_flops == cost.step_flops, config
        assert sum(p.numel() for p in model.dense_parameters()) == cost.params_dense, config
    assert len(seen) >= count * 0.9  # really different configs


def test_rankmixer_follows_the_paper_size_formula():
    # RankMixer Eq. 12: params ~ 2kLTD^2, FLOPs ~ 4kLTD^2; the FFN part is exactly that.
    config = small_config("rankmixer", n_tokens=8, d_model=64, heads=8, ffn_ratio=4, depth=3)
    cost = analytic_cost(config)
    ffn_flops = 4 * 4 * 3 * 8 * 64 * 64
    assert ffn_flops <= cost.flops <= 1.1 * ffn_flops


def test_profile_reports_every_quantity_and_latency():
    config = small_config("unimixing_lite")
    result = profile(config, batch_size=8, latency=True)
    cost = analytic_cost(config)
    assert result.flops == result.flops_analytic == cost.flops
    assert result.step_flops == cost.step_flops > 0
    assert result.params_embedding == sum(config.cardinalities) * config.embed_dim
    assert result.embedding_bytes == 4 * result.params_embedding
    assert result.train_flops_per_batch == 3 * (result.flops * 8 + result.step_flops)
    assert result.latency_ms is not None and result.latency_ms > 0
