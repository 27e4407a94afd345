"""One contract, run over every registered family (timm-style): mixers and baselines alike."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from unimixer_plan.mixers import (
    ConfigError,
    CTRModel,
    analytic_cost,
    baseline_config,
    build_model,
    get_family,
    list_mixers,
    list_searchable,
)
from unimixer_plan.mixers.sinkhorn import SinkhornMixing, linear_temperature
from unimixer_plan.mixers.tokenizer import field_offsets
from unimixer_plan.profiling import example_inputs

from tests.conftest import FAMILY_EXAMPLES, small_config


def test_every_registered_family_has_an_example():
    assert sorted(FAMILY_EXAMPLES) == list_mixers()
    assert list_mixers() == ["attention", "fm", "lr", "rankmixer", "unimixer", "unimixing_lite", "wukong"]
    assert list_searchable() == ["attention", "rankmixer", "unimixer", "unimixing_lite", "wukong"]
    assert [f for f in list_mixers() if get_family(f).baseline] == ["fm", "lr"]


@pytest.mark.parametrize("family", list_mixers())
def test_forward_shape_finite_and_every_parameter_gets_a_gradient(family):
    config = small_config(family)
    model = build_model(config)
    assert isinstance(model, CTRModel)
    dense, sparse = example_inputs(config, batch_size=6)
    logits = model(dense, sparse)
    assert logits.shape == (6,)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    embedding = {id(p) for p in model.embedding_parameters()}
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{family}: {name} received no gradient"
        if id(param) not in embedding:  # tables: only looked-up rows are non-zero
            assert param.grad.abs().sum() > 0, f"{family}: {name} has an all-zero gradient"


@pytest.mark.parametrize("family", list_mixers())
def test_parameter_counts_match_the_analytic_formula(family):
    config = small_config(family)
    model = build_model(config)
    cost = analytic_cost(config)
    assert sum(p.numel() for p in model.dense_parameters()) == cost.params_dense
    assert sum(p.numel() for p in model.embedding_parameters()) == cost.params_embedding
    assert len(model.dense_parameters()) + len(model.embedding_parameters()) == len(list(model.parameters()))


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


@pytest.mark.parametrize("family", list_mixers())
def test_embedding_penalty_is_the_batch_mean_of_looked_up_squares(family):
    config = small_config(family)
    model = build_model(config)
    with torch.no_grad():  # give zero-initialised tables (lr) something to measure
        for table in model.embedding_tables():
            table.weight.normal_()
    _, sparse = example_inputs(config, batch_size=7)
    ids = sparse + field_offsets(config.cardinalities)
    expected = sum(table.weight[ids].pow(2).sum(dim=(1, 2)) for table in model.embedding_tables()).mean()
    penalty = model.embedding_penalty(sparse)
    assert penalty.shape == ()
    torch.testing.assert_close(penalty, expected)
    assert len(model.embedding_tables()) == (2 if family == "fm" else 1)


@pytest.mark.parametrize("family", list_mixers())
def test_tables_switch_to_sparse_gradients(family):
    config = small_config(family)
    model = build_model(config)
    for table in model.embedding_tables():
        assert isinstance(table, nn.Embedding)
        table.sparse = True
    dense, sparse = example_inputs(config, batch_size=4)
    (model(dense, sparse).sum() + model.embedding_penalty(sparse)).backward()
    assert all(p.grad is not None and p.grad.is_sparse for p in model.embedding_parameters())
    assert not any(p.grad.is_sparse for p in model.dense_parameters())


@pytest.mark.parametrize("family", list_mixers())
def test_temperature_interface(family):
    model = build_model(small_config(family))
    assert model.uses_temperature == (family in ("unimixer", "unimixing_lite"))
    model.set_temperature(0.3)  # a no-op for the others, never an error
    assert all(m.tau == 0.3 for m in model.modules() if isinstance(m, SinkhornMixing))


def test_baseline_config_and_knob_declaration():
    schema = (3, (11, 5, 7, 2), 4)
    fm = baseline_config("fm", *schema)
    assert (fm.family, fm.embed_dim, fm.n_tokens, fm.d_model, fm.depth, fm.ffn_ratio) == (
        "fm",
        4,
        None,
        None,
        None,
        None,
    )
    assert baseline_config("lr", *schema).embed_dim == 1  # width-1 tables: one LR, one config
    with pytest.raises(ConfigError, match="is not a baseline"):
        baseline_config("unimixer", *schema)
    with pytest.raises(ConfigError, match=r"^depth=2: is not used by family fm"):
        small_config("fm", depth=2)
    with pytest.raises(ConfigError, match=r"^embed_dim=4: must be 1 for family lr"):
        small_config("lr", embed_dim=4)


# --- Training moves what each family mixes with --------------------------------------------


def _planted_target(dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
    """A learnable target with cross-field interactions, so that mixing has something to do."""
    field_sign = torch.tensor([1.0, -1.0, 0.5, -0.5, 1.5, -1.5, 2.0, -2.0, 1.0, -1.0, 0.5])
    return 2.0 * dense[:, 0] * dense[:, 1] + field_sign[sparse[:, 0]] * dense[:, 2] - 0.5 * dense[:, 2]


def train_briefly(model: CTRModel, steps: int = 40, lr: float = 1e-2, seed: int = 0) -> list[float]:
    """A small Adam loop on random inputs with a planted target; tau anneals 1.0 -> 0.05.
    Returns the losses."""
    config = model.config
    generator = torch.Generator().manual_seed(seed)
    dense = torch.randn(128, config.num_dense, generator=generator)
    cards = torch.tensor(config.cardinalities)
    sparse = (torch.rand(128, len(cards), generator=generator) * cards).long()
    target = _planted_target(dense, sparse)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for step in range(steps):
        model.set_temperature(linear_temperature(step, steps - 1, config.tau_start, config.tau_end))
        loss = torch.nn.functional.mse_loss(model(dense, sparse), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def interaction_tensors(model: CTRModel) -> dict[str, torch.Tensor]:
    """What each family mixes or interacts with (constrained matrices at the current tau for
    the Sinkhorn families, the raw weights otherwise)."""
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, SinkhornMixing):
            with torch.no_grad():
                local, global_ = module.build_matrices()
            out[f"{name}.local"], out[f"{name}.global"] = local, global_
    params = dict(model.named_parameters())
    family = model.config.family
    patterns = {
        "attention": ("attention.qkv.weight",),
        "wukong": ("fm_projection", "compress"),
        "rankmixer": ("ffn.up.weight",),  # TokenMixer has no parameters: the FFN is what learns
        "lr": ("weights.weight", "dense.weight"),
        "fm": ("factors.weight", "dense_factors"),
    }.get(family, ())
    out.update({n: p.detach().clone() for n, p in params.items() if n.endswith(patterns)})
    return out


@pytest.mark.parametrize("family", list_mixers())
def test_training_changes_the_mixing_or_interaction_parameters(family):
    config = small_config(family)
    torch.manual_seed(0)
    model = build_model(config)
    torch.manual_seed(0)
    untouched = build_model(config)
    losses = train_briefly(model)
    assert losses[-1] < losses[0], losses  # lr cannot fit the interactions, but it learns
    untouched.set_temperature(config.tau_end)  # same tau: what differs is what was learned
    before, after = interaction_tensors(untouched), interaction_tensors(model)
    assert before, f"{family}: nothing to compare"
    for name, value in after.items():
        change = (value - before[name]).abs().max().item()
        assert change > 1e-2, f"{family}: {name} moved only {change:.2e}"
