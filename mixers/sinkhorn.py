"""Sinkhorn-constrained mixing matrices, their priors and the temperature schedule.

UniMixer constrains every learned mixing matrix W: symmetrise ((W + W^T)/2), divide by
a temperature tau, then Sinkhorn-normalise to a near doubly-stochastic matrix. Small
tau makes it sharp (close to a permutation).

Two things make that trainable here:

- A prior that does not sharpen with 1/tau. The logits are
  ``log(PRIOR_MASS * prior + (1 - PRIOR_MASS) / n) + sym(W) / tau``: the first term is the
  log of a doubly-stochastic matrix (half the mass on the prior pattern, half uniform),
  so with W = 0 the constrained matrix IS that mixture at every temperature, soft and
  with gradients everywhere; the learned part sym(W) / tau still sharpens as tau anneals.
  (Putting the prior inside W, e.g. W = I + noise, turns an O(1) gap into 20 nats at
  tau = 0.05: an exact identity with vanishing gradients.)
- Sinkhorn to a tolerance. With symmetric logits the doubly-stochastic scaling is
  symmetric, P = exp(L + f_i + f_j), and f minimises the convex
  ``sum_ij exp(L_ij + f_i + f_j) - 2 sum_i f_i``. Plain alternating normalisation needs
  hundreds to thousands of iterations to reach 1e-3 at tau = 0.05 with O(1) logits (it
  converges linearly, slowly when the limit is near a permutation); damped Newton on f
  reaches 1e-3 in about ten steps from scratch, two to six during training. Soft
  matrices (init, high tau) are finished by one or two plain O(n^2) steps first. The
  gradient is implicit (the fixed-point equations differentiated once), so no iteration
  is kept for autograd: memory is one n x n matrix, not one per iteration.

All of it runs in float64 internally and returns float32 (or float64 for float64
input): exp(w / 0.05) overflows half precision.

Both linear systems are symmetric positive definite where it matters, so they are solved
by Cholesky, never by batched LU: on this CPU stack (torch 2.13, MKL) batched LU with two
or more threads returns garbage pivots for matrices over ~128 rows and either raises or
silently returns a wrong solution (measured: error 8e-3 at 152 x 152; see
tests/test_unimixing.py). Newton's Hessian diag(r) + P + ridge is positive definite for
any finite P (x'Hx = sum_ij P_ij (x_i + x_j)^2 / 2 + ridge |x|^2); I + P of the implicit
gradient is diagonally dominant once the rows sum to 1, and may be indefinite when
Sinkhorn stopped far from it, where least squares takes over.
"""

from __future__ import annotations

import math

import torch
from torch import nn

PRIOR_MASS = 0.5  # share of each row on the prior pattern at init; the rest is uniform
SINKHORN_TOL = 1e-3  # rows and columns within this of 1
SINKHORN_MAX_ITERS = 50  # iterations; about ten suffice from scratch at tau = 0.05 (see tests)
_ARMIJO = 1e-4  # sufficient-decrease constant of the Newton line search
_MAX_HALVINGS = 30  # line-search step sizes 1, 1/2, ..., 2^-30


def _solve_spd(matrix: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """(m, n, n) symmetric, (m, n) -> (m, n): matrix^-1 rhs by Cholesky.

    A finite matrix Cholesky rejects (not positive definite in floating point) is solved
    alone by least squares; a non-finite one (diverged weights) gets NaN, as LU gave, so
    that training reports a non-finite loss instead of a linear-algebra error.
    """
    factor, info = torch.linalg.cholesky_ex(matrix)
    solution = torch.cholesky_solve(rhs.unsqueeze(-1), factor).squeeze(-1)
    for index in info.nonzero().flatten().tolist():
        if bool(torch.isfinite(matrix[index]).all()) and bool(torch.isfinite(rhs[index]).all()):
            solution[index] = torch.linalg.lstsq(matrix[index], rhs[index].unsqueeze(-1)).solution.squeeze(-1)
        else:
            solution[index] = math.nan
    return solution


def _objective(logits: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """(m, n, n), (m, n) -> (m,): sum_ij exp(L_ij + f_i + f_j) - 2 sum_i f_i (convex in f)."""
    return (logits + f.unsqueeze(-1) + f.unsqueeze(-2)).exp().sum((-2, -1)) - 2.0 * f.sum(-1)


@torch.no_grad()
def symmetric_potentials(logits: torch.Tensor, tol: float, max_iters: int) -> tuple[torch.Tensor, int]:
    """The symmetric scaling of symmetric float64 logits.

    logits: (m, n, n) -> (f: (m, n), iterations taken), with P = exp(L + f_i + f_j) having
    every row (and, by symmetry, column) sum within ``tol`` of 1, unless ``max_iters``
    iterations were not enough or rounding stops progress first.

    Iterations start as cheap O(n^2) symmetric Sinkhorn steps f <- f - log(r) / 2, which
    finish soft matrices (at init, at high tau) in a step or two, and switch for good to
    damped Newton, O(n^3) but quadratic, as soon as a step fails to halve the error.
    """
    # Start: f_i = -lse_i / 2 makes every P_ij <= 1 and is exact for a prior mixture.
    f = -0.5 * torch.logsumexp(logits, dim=-1)
    eye = torch.eye(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    newton, previous_error = False, math.inf
    for step in range(max_iters):
        p = (logits + f.unsqueeze(-1) + f.unsqueeze(-2)).exp()
        rows = p.sum(-1)
        error = float((rows - 1.0).abs().amax())
        if error <= tol:
            return f, step
        if not newton and error <= 0.5 * previous_error:
            f = f - 0.5 * rows.log()
            previous_error = error
            continue
        newton = True
        # Newton on the convex objective sum_ij P_ij - 2 sum_i f_i: Hessian 2 (diag(r) + P),
        # gradient 2 (r - 1). diag(r) + P is positive definite whenever every P_ii > 0.
        hessian = p + torch.diag_embed(rows) + 1e-12 * eye
        delta = _solve_spd(hessian, 1.0 - rows)
        slope = (2.0 * (rows - 1.0) * delta).sum(-1)  # directional derivative, < 0
        value = rows.sum(-1) - 2.0 * f.sum(-1)
        step_size = torch.ones_like(value)
        pending = torch.ones_like(value, dtype=torch.bool)
        for _ in range(_MAX_HALVINGS):  # backtracking, per matrix; the full step is the usual case
            f_try = f + step_size.unsqueeze(-1) * delta
            value_try = _objective(logits, f_try)
            accept = pending & (value_try <= value + _ARMIJO * step_size * slope)
            f = torch.where(accept.unsqueeze(-1), f_try, f)
            pending = pending & ~accept
            if not bool(pending.any()):
                break
            step_size = 0.5 * step_size
        else:
            if bool(pending.all()):
                return f, step + 1  # no matrix can descend further: rounding, not the tolerance
    return f, max_iters


class _SymmetricSinkhorn(torch.autograd.Function):
    """P = exp(L + f_i + f_j) with f the symmetric scaling; gradient by implicit differentiation.

    At the fixed point (rows of P sum to 1), for a symmetric perturbation dL:
    (I + P) df = -rowsum(P * dL) and dP_ij = P_ij (dL_ij + df_i + df_j). Hence for an
    upstream gradient G: dL-gradient = G*P - b_i P_ij with (I + P) b = rowsum(G*P) + colsum(G*P),
    symmetrised because only symmetric logits are in the domain.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, tol: float, max_iters: int) -> torch.Tensor:
        wide = logits.detach().to(torch.float64)
        f, _ = symmetric_potentials(wide, tol, max_iters)
        p = (wide + f.unsqueeze(-1) + f.unsqueeze(-2)).exp()
        ctx.save_for_backward(p)
        ctx.input_dtype = logits.dtype
        return p.to(torch.promote_types(logits.dtype, torch.float32))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (p,) = ctx.saved_tensors
        weighted = grad.to(p.dtype) * p
        a = weighted.sum(-1) + weighted.sum(-2)
        # I + P is singular only for an exact 2-cycle with zero diagonal, which exp rules out;
        # the ridge keeps near-permutations solvable (that direction's term cancels anyway).
        system = p + (1.0 + 1e-12) * torch.eye(p.shape[-1], dtype=p.dtype, device=p.device)
        b = _solve_spd(system, a).unsqueeze(-1)  # (m, n, 1)
        full = weighted - b * p
        return (0.5 * (full + full.transpose(-1, -2))).to(ctx.input_dtype), None, None


def sinkhorn(logits: torch.Tensor, tol: float = SINKHORN_TOL, max_iters: int = SINKHORN_MAX_ITERS) -> torch.Tensor:
    """Symmetric Sinkhorn-Knopp: symmetric (..., n, n) logits -> (..., n, n) doubly stochastic.

    Returns the unique symmetric scaling exp(L_ij + f_i + f_j) whose rows and columns sum
    to 1 within ``tol`` (at most ``max_iters`` iterations, see :func:`symmetric_potentials`),
    float32 for float32 or half input, float64 for float64. Differentiable (implicit
    gradient, computed in float64). Raises ValueError for asymmetric
    logits, since the symmetric scaling is only doubly stochastic for symmetric input.
    """
    if logits.shape[-1] != logits.shape[-2]:
        raise ValueError(f"sinkhorn needs square matrices, got shape {tuple(logits.shape)}")
    wide = logits.detach().float()
    scale = wide.abs().amax().clamp(min=1.0)
    if float((wide - wide.transpose(-1, -2)).abs().amax()) > 1e-5 * float(scale):
        raise ValueError("sinkhorn needs symmetric logits (symmetrise with (W + W^T) / 2 first)")
    n = logits.shape[-1]
    flat = logits.reshape(-1, n, n)
    return _SymmetricSinkhorn.apply(flat, tol, max_iters).view(logits.shape)


def prior_logits(prior: torch.Tensor, mass: float = PRIOR_MASS) -> torch.Tensor:
    """log(mass * prior + (1 - mass) / n) for a symmetric doubly-stochastic (..., n, n) prior.

    Its exp is doubly stochastic already, so Sinkhorn returns it unchanged: with no learned
    part the constrained matrix is this mixture at every temperature.
    """
    n = prior.shape[-1]
    return torch.log(mass * prior + (1.0 - mass) / n)


def constrain(
    raw: torch.Tensor,
    tau: float,
    prior: torch.Tensor | None = None,
    tol: float = SINKHORN_TOL,
    max_iters: int = SINKHORN_MAX_ITERS,
) -> torch.Tensor:
    """UniMixer's constraint on (..., n, n): Sinkhorn(prior_logits + ((W + W^T) / 2) / tau).

    ``prior`` (broadcastable to raw, symmetric, doubly stochastic) is a fixed log-domain
    offset that does not scale with 1/tau; without it this is the paper's plain
    Sinkhorn(sym(W) / tau).
    """
    logits = (raw + raw.transpose(-1, -2)) / (2.0 * tau)
    if prior is not None:
        logits = logits + prior_logits(prior).to(logits.dtype)
    return sinkhorn(logits, tol, max_iters)


def linear_temperature(step: int, total_steps: int, tau_start: float, tau_end: float) -> float:
    """tau_j = max(tau_start - (tau_start - tau_end) * j / J, tau_end) (UniMixer's linear schedule)."""
    if total_steps <= 0 or step >= total_steps:
        return tau_end  # exactly, not tau_start - (tau_start - tau_end) with rounding
    return max(tau_start - (tau_start - tau_end) * step / total_steps, tau_end)


class SinkhornMixing(nn.Module):
    """Base for mixing layers whose matrices depend on parameters only, never on the input.

    Subclasses implement ``build_matrices()``. In train mode the matrices are built once
    per forward (once per step, shared by the whole batch); in eval mode they are built
    once and cached until the module goes back to train mode, its temperature changes or
    a state dict is loaded.
    """

    def __init__(self, tau: float, tol: float, max_iters: int) -> None:
        super().__init__()
        if not (math.isfinite(tol) and tol > 0) or max_iters < 1:
            raise ValueError(f"Sinkhorn needs tol > 0 and max_iters >= 1, got {tol}, {max_iters}")
        self.tau = tau
        self.tol = tol
        self.max_iters = max_iters
        self._cache: tuple[torch.Tensor, ...] | None = None
        self.register_load_state_dict_post_hook(lambda module, _keys: module.clear_cache())

    def build_matrices(self) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def matrices(self) -> tuple[torch.Tensor, ...]:
        if self.training:
            self._cache = None
            return self.build_matrices()
        if self._cache is None:
            with torch.no_grad():
                self._cache = self.build_matrices()
        return self._cache

    def set_temperature(self, tau: float) -> None:
        self.tau = float(tau)
        self.clear_cache()

    def clear_cache(self) -> None:
        self._cache = None

    def train(self, mode: bool = True) -> SinkhornMixing:
        self.clear_cache()
        return super().train(mode)
