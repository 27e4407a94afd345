"""One contract, run over every registered family (timm-style)."""

from __future__ import annotations

import pytest
import torch
from unimixer_plan.mixers import analytic_cost, build_model, list_mixers
from unimixer_plan.profiling import example_inputs

from tests.conftest import FAMILY_EXAMPLES, small_config


def test_every_registered_family_has_an_example():
    assert sorted(FAMILY_EXAMPLES) == list_mixers()
    assert list_mixers() == ["attention", "rankmixer", "unimixer", "unimixing_lite", "wukong"]


@pytest.mark.parametrize("family", list_mixers())
def test_forward_shape_finite_and_every_parameter_gets_a_gradient(family):
    config = small_config(family)
    model = build_model(config)
    dense, sparse = example_inputs(config, batch_size=6)
    logits = model(dense, sparse)
    assert logits.shape == (6,)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{family}: {name} received no gradient"
        if name != "tokenizer.embedding.weight":  # only looked-up rows are non-zero
            assert param.grad.abs().sum() > 0, f"{family}: {name} has an all-zero gradient"


@pytest.mark.parametrize("family", list_mixers())
def test_parameter_counts_match_the_analytic_formula(family):
    config = small_config(family)
    model = build_model(config)
    cost = analytic_cost(config)
    assert sum(p.numel() for p in model.dense_parameters()) == cost.params_dense
    assert sum(p.numel() for p in model.embedding_parameters()) == cost.params_embedding


@pytest.mark.parametrize("family", list_mixers())
def test_eval_output_does_not_depend_on_batch_composition(family):
    # Mixing matrices are input-independent, so a sample's logit must not change with its batch mates.
    config = small_config(family)
    model = build_model(config).eval()
    dense, sparse = example_inputs(config, batch_size=5)
    with torch.no_grad():
        together = model(dense, sparse)
        alone = torch.cat([model(dense[i : i + 1], sparse[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
