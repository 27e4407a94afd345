from __future__ import annotations

import torch
from unimixer_plan.mixers import build_model
from unimixer_plan.mixers.sinkhorn import SinkhornMixing, constrain, linear_temperature, sinkhorn
from unimixer_plan.mixers.unimixing import (
    apply_unimixing,
    merge_blocks,
    regrouping_permutation,
    split_blocks,
    token_mix,
)

from tests.conftest import small_config


def test_unimixing_with_identity_local_and_regrouping_global_is_tokenmixer():
    t, d, batch = 6, 24, 5
    x = torch.randn(t, batch, d)
    local = torch.eye(d // t).expand(t * t, d // t, d // t)
    mixed = apply_unimixing(x, local, regrouping_permutation(t, t), heads=t)
    torch.testing.assert_close(mixed, token_mix(x, heads=t), atol=1e-6, rtol=0)
    # and TokenMixer is the sample-first regrouping of the RankMixer paper
    sample_first = x.transpose(0, 1).reshape(batch, t, t, d // t).transpose(1, 2).reshape(batch, t, d)
    torch.testing.assert_close(token_mix(x, heads=t).transpose(0, 1), sample_first, atol=0, rtol=0)


def test_block_split_and_merge_are_inverse_and_follow_flatten_order():
    x = torch.randn(3, 2, 8)
    blocks = split_blocks(x, heads=4)  # block n = token n // 4, head n % 4
    assert blocks.shape == (12, 2, 2)
    torch.testing.assert_close(blocks[5], x[1, :, 2:4])
    torch.testing.assert_close(merge_blocks(blocks, n_tokens=3), x)


def test_sinkhorn_rows_and_columns_sum_to_one_at_tau_005():
    raw = torch.randn(32, 32) * 0.1
    matrix = constrain(raw, tau=0.05, iters=20)
    torch.testing.assert_close(matrix.sum(0), torch.ones(32), atol=1e-3, rtol=0)
    torch.testing.assert_close(matrix.sum(1), torch.ones(32), atol=1e-3, rtol=0)
    torch.testing.assert_close(matrix, matrix.T, atol=1e-3, rtol=0)  # symmetric input stays symmetric
    assert (matrix >= 0).all()


def test_sinkhorn_is_batched_and_fp32_even_for_half_inputs():
    out = sinkhorn((0.1 * torch.randn(4, 6, 6)).half() / 0.05, iters=20)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    torch.testing.assert_close(out.sum(-1), torch.ones(4, 6), atol=1e-3, rtol=0)


def test_model_mixing_matrices_are_doubly_stochastic_at_the_final_temperature():
    model = build_model(small_config("unimixing_lite"))
    model.set_temperature(0.05)
    for module in model.modules():
        if isinstance(module, SinkhornMixing):
            local, global_ = module.matrices()
            torch.testing.assert_close(global_.sum(-1), torch.ones(global_.shape[0]), atol=1e-3, rtol=0)
            torch.testing.assert_close(local.sum(-2), torch.ones(local.shape[:2][::-1]).T, atol=1e-3, rtol=0)


def test_linear_temperature_schedule():
    assert linear_temperature(0, 100, 1.0, 0.05) == 1.0
    assert abs(linear_temperature(50, 100, 1.0, 0.05) - 0.525) < 1e-12
    assert linear_temperature(100, 100, 1.0, 0.05) == 0.05
    assert linear_temperature(500, 100, 1.0, 0.05) == 0.05


def test_eval_mode_builds_matrices_once_and_train_mode_invalidates(monkeypatch):
    model = build_model(small_config("unimixer")).eval()
    mixing = next(m for m in model.modules() if isinstance(m, SinkhornMixing))
    calls = []
    original = type(mixing).build_matrices
    monkeypatch.setattr(type(mixing), "build_matrices", lambda self: calls.append(1) or original(self))
    from unimixer_plan.profiling import example_inputs

    inputs = example_inputs(model.config, 4)
    with torch.no_grad():
        for _ in range(3):
            model(*inputs)
    assert len(calls) == model.config.depth  # once per layer, not per forward
    model.train()
    model(*inputs)
    model(*inputs)
    assert len(calls) == 3 * model.config.depth  # train mode: once per forward (per step)
    model.eval()
    model.set_temperature(0.5)
    with torch.no_grad():
        model(*inputs)
    assert len(calls) == 4 * model.config.depth
