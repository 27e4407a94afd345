from __future__ import annotations

import math

import pytest
import torch
from unimixer_plan.mixers import build_model
from unimixer_plan.mixers.sinkhorn import SinkhornMixing, _solve_spd, constrain, linear_temperature, sinkhorn
from unimixer_plan.mixers.unimixing import (
    apply_unimixing,
    global_prior,
    merge_blocks,
    regrouping_permutation,
    split_blocks,
    token_mix,
)
from unimixer_plan.profiling import example_inputs

from tests.conftest import small_config
from tests.test_mixers_contract import train_briefly


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


def _assert_doubly_stochastic(matrix: torch.Tensor, tol: float = 1e-3) -> None:
    assert (matrix >= 0).all()
    assert (matrix.sum(-1) - 1).abs().max() <= tol
    assert (matrix.sum(-2) - 1).abs().max() <= tol


def test_sinkhorn_reaches_the_tolerance_at_tau_005_with_o1_logits():
    # randn raw weights at tau = 0.05: logits spread over ~30 nats, where 20 plain
    # alternating iterations left rows off by 0.17-0.6.
    for shape in [(32, 32), (16, 8, 8), (64, 64), (4, 2, 2)]:
        raw = torch.randn(shape)
        matrix = constrain(raw, tau=0.05)
        _assert_doubly_stochastic(matrix)
        torch.testing.assert_close(matrix, matrix.transpose(-1, -2), atol=1e-6, rtol=0)  # symmetric in, symmetric out
    # with a prior too (the model's logits), and a non-default tolerance
    prior = global_prior(4, 4)
    _assert_doubly_stochastic(constrain(torch.randn(16, 16), 0.05, prior, tol=1e-5), tol=1e-5)


def test_sinkhorn_is_batched_and_fp32_even_for_half_inputs():
    raw = torch.randn(4, 6, 6)
    out = sinkhorn(((raw + raw.transpose(-1, -2)) / 2 / 0.05).half())
    assert out.dtype == torch.float32 and out.shape == (4, 6, 6) and torch.isfinite(out).all()
    _assert_doubly_stochastic(out)


def test_sinkhorn_refuses_asymmetric_logits():
    with pytest.raises(ValueError, match="symmetric"):
        sinkhorn(torch.randn(5, 5))


def test_sinkhorn_gradient_is_the_implicit_gradient():
    raw = torch.randn(2, 5, 5, dtype=torch.float64) / 0.3

    def constrained(w):
        return sinkhorn((w + w.transpose(-1, -2)) / 2, tol=1e-12)

    assert torch.autograd.gradcheck(constrained, (raw.requires_grad_(),), eps=1e-4, atol=1e-5, rtol=1e-3)


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_sinkhorn_is_right_on_large_batches_with_two_threads(two_threads):
    # Batched LU on this stack returns garbage pivots past ~128 rows with 2 threads (a plan's
    # test-split check trains on every core): the solve raised, or was silently wrong.
    torch.manual_seed(0)
    raw = torch.randn(4, 152, 152, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(4, 152, 152, dtype=torch.float64)
    matrix = constrain(raw, tau=0.05, tol=1e-10)  # converged, so batch and single agree
    _assert_doubly_stochastic(matrix, tol=1e-10)
    (grad,) = torch.autograd.grad((matrix * upstream).sum(), raw)
    torch.set_num_threads(1)
    for i in range(4):  # one matrix at a time, one thread: the reference
        alone = raw[i].detach().requires_grad_()
        single = constrain(alone, tau=0.05, tol=1e-10)
        torch.testing.assert_close(single, matrix[i].detach(), atol=1e-9, rtol=0)
        (expected,) = torch.autograd.grad((single * upstream[i]).sum(), alone)
        torch.testing.assert_close(grad[i], expected, atol=1e-8, rtol=1e-6)


def test_spd_solve_falls_back_for_a_matrix_cholesky_rejects():
    good = torch.eye(3, dtype=torch.float64) * 2
    indefinite = torch.tensor([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    rhs = torch.tensor([[2.0, 4.0, 6.0], [3.0, 3.0, 1.0]], dtype=torch.float64)
    diverged = torch.full((3, 3), math.nan, dtype=torch.float64)
    solution = _solve_spd(torch.stack([good, indefinite, diverged]), torch.cat([rhs, rhs[:1]]))
    torch.testing.assert_close(solution[0], rhs[0] / 2)
    torch.testing.assert_close(indefinite @ solution[1], rhs[1])
    assert solution[2].isnan().all()  # NaN in, NaN out (training reports the non-finite loss), no MKL error


def test_prior_is_the_constrained_matrix_at_every_temperature():
    # With zero learned logits the constrained matrices are exactly the prior mixture,
    # soft (local diagonal 1/2 + 1/(2B), well below 1) whatever tau.
    model = build_model(small_config("unimixer", n_tokens=4, d_model=8, heads=4))  # H == T, B = 2
    mixing = next(m for m in model.modules() if isinstance(m, SinkhornMixing))
    with torch.no_grad():
        mixing.local_raw.zero_()
        mixing.global_raw.zero_()
    n, b = 16, 2
    for tau in (1.0, 0.05):
        mixing.set_temperature(tau)
        local, global_ = mixing.build_matrices()
        torch.testing.assert_close(local, (0.5 * torch.eye(b) + 0.5 / b).expand(n, b, b), atol=1e-6, rtol=0)
        torch.testing.assert_close(global_, 0.5 * regrouping_permutation(4, 4) + 0.5 / n, atol=1e-6, rtol=0)


@pytest.mark.parametrize("family", ["unimixer", "unimixing_lite"])
def test_fresh_model_matrices_are_soft_and_doubly_stochastic_at_every_temperature(family):
    model = build_model(small_config(family, n_tokens=8, d_model=32, heads=2))  # B = 16, N = 16
    for tau in (1.0, 0.05):
        model.set_temperature(tau)
        for module in model.modules():
            if isinstance(module, SinkhornMixing):
                local, global_ = module.build_matrices()
                _assert_doubly_stochastic(local)
                _assert_doubly_stochastic(global_)
                diagonal = torch.diagonal(local, dim1=-2, dim2=-1).mean().item()
                assert 0.45 < diagonal < 0.65, diagonal  # 1/2 + 1/32 at init: soft, not an identity


@pytest.mark.parametrize("family", ["unimixer", "unimixing_lite"])
def test_gradients_reach_the_raw_mixing_parameters_at_every_temperature(family):
    config = small_config(family, n_tokens=8, d_model=32, heads=2)
    model = build_model(config)
    dense, sparse = example_inputs(config, batch_size=16)
    norms = {}
    for tau in (1.0, 0.05):
        model.set_temperature(tau)
        model.zero_grad()
        model(dense, sparse).pow(2).mean().backward()
        mixing = next(m for m in model.modules() if isinstance(m, SinkhornMixing))
        norms[tau] = {name: p.grad.norm().item() for name, p in mixing.named_parameters()}
    for name, at_one in norms[1.0].items():
        assert at_one > 1e-6, (name, norms)
        # Soft matrices and logits = sym(W) / tau: the gradient grows as tau falls, never vanishes.
        assert norms[0.05][name] > at_one, (name, norms)


@pytest.mark.parametrize("family", ["unimixer", "unimixing_lite"])
def test_training_moves_the_constrained_local_and_global_matrices(family):
    config = small_config(family)
    torch.manual_seed(0)
    model = build_model(config)
    torch.manual_seed(0)
    untouched = build_model(config)
    train_briefly(model, steps=50)
    untouched.set_temperature(config.tau_end)  # compare at the same tau: what differs was learned
    layers = [m for m in model.modules() if isinstance(m, SinkhornMixing)]
    fresh = [m for m in untouched.modules() if isinstance(m, SinkhornMixing)]
    assert len(layers) == config.depth
    for trained, initial in zip(layers, fresh, strict=True):
        (local, global_), (local0, global0) = trained.build_matrices(), initial.build_matrices()
        _assert_doubly_stochastic(local)  # also after training, at the final temperature
        _assert_doubly_stochastic(global_)
        assert (local - local0).abs().max() > 1e-2
        assert (global_ - global0).abs().max() > 1e-2
        diagonal_shift = (torch.diagonal(local, dim1=-2, dim2=-1) - torch.diagonal(local0, dim1=-2, dim2=-1)).abs()
        assert diagonal_shift.mean() > 1e-2, diagonal_shift


def test_lite_bases_change_the_function():
    # Two configs differing only in bases, every other weight copied: different outputs
    # at both ends of the schedule (with identity bases, any combination was the identity).
    torch.manual_seed(0)
    two = build_model(small_config("unimixing_lite", bases=2))
    torch.manual_seed(1)
    four = build_model(small_config("unimixing_lite", bases=4))
    shared = {k: v for k, v in two.state_dict().items() if not k.endswith((".bases", ".coefficients"))}
    four.load_state_dict(shared, strict=False)
    dense, sparse = example_inputs(two.config, batch_size=8)
    for tau in (1.0, 0.05):
        two.set_temperature(tau)
        four.set_temperature(tau)
        with torch.no_grad():
            difference = (two(dense, sparse) - four(dense, sparse)).abs().max().item()
        assert difference > 1e-4, (tau, difference)
    # and the bases of one model differ from each other
    bases = next(m for m in four.modules() if isinstance(m, SinkhornMixing)).bases
    assert min((bases[i] - bases[j]).abs().max() for i in range(4) for j in range(i)) > 0.1


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
