"""UniMixing and UniMixing-Lite: learned, Sinkhorn-constrained token mixing.

Notation (DESIGN.md section 2): T tokens of width D, H heads, block size B = D / H,
N = T * H blocks, L = T * D. A sample's flattened X is cut into N blocks of B values;
block n = (token n // H, head n % H).

- local step: block n is multiplied by its own B x B matrix W_B[n] (x_n W_B[n]);
- global step: output block m = sum_n W_G[m, n] * block n, with W_G of shape N x N.

Both are constrained by :func:`unimixer_plan.mixers.sinkhorn.constrain`, around a fixed prior:
TokenMixer's (local identity, global regrouping; see :func:`global_prior`). Multiply-adds per sample:
N * B^2 = L * B (local) + N^2 * B = L^2 / B (global).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from unimixer_plan.mixers.sinkhorn import SinkhornMixing, constrain


def split_blocks(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(T, batch, D) -> (N, batch, B), block n = (token n // H, head n % H)."""
    t, batch, d = x.shape
    return x.view(t, batch, heads, d // heads).permute(0, 2, 1, 3).reshape(t * heads, batch, d // heads)


def merge_blocks(blocks: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """(N, batch, B) -> (T, batch, D); inverse of :func:`split_blocks`."""
    n, batch, b = blocks.shape
    heads = n // n_tokens
    return blocks.view(n_tokens, heads, batch, b).permute(0, 2, 1, 3).reshape(n_tokens, batch, heads * b)


def apply_unimixing(x: torch.Tensor, local: torch.Tensor, global_: torch.Tensor, heads: int) -> torch.Tensor:
    """UniMixing with given matrices: (T, batch, D) -> (T, batch, D).

    local: (N, B, B), global_: (N, N). Written with bmm and mm (not einsum) so that the
    profiler's count is exact.
    """
    n_tokens, batch, _ = x.shape
    blocks = torch.bmm(split_blocks(x, heads), local.to(x.dtype))  # (N, batch, B)
    n, _, b = blocks.shape
    mixed = torch.mm(global_.to(x.dtype), blocks.reshape(n, batch * b))  # (N, batch*B)
    return merge_blocks(mixed.view(n, batch, b), n_tokens)


def token_mix(x: torch.Tensor, heads: int) -> torch.Tensor:
    """RankMixer's TokenMixer: (T, batch, D) -> (T, batch, D), needs heads == T.

    Splits each token into H heads and regroups head h of every token into new token h:
    new token h, slot t = old token t, head h. No parameters, no multiply-adds.
    """
    t, batch, d = x.shape
    return x.view(t, batch, heads, d // heads).permute(2, 1, 0, 3).reshape(heads, batch, t * (d // heads))


def regrouping_permutation(n_tokens: int, heads: int) -> torch.Tensor:
    """The N x N block permutation of TokenMixer's regrouping, generalised to any H.

    Output block m = h * T + t takes input block n = t * H + h (token t, head h): the T x H
    grid of blocks is read column-major. With H == T this makes UniMixing equal TokenMixer
    exactly and is a symmetric involution; with H != T it is the same "head h of every
    token goes together" regrouping, just not symmetric.
    """
    n = n_tokens * heads
    perm = torch.zeros(n, n)
    for t in range(n_tokens):
        for h in range(heads):
            perm[h * n_tokens + t, t * heads + h] = 1.0
    return perm


def global_prior(n_tokens: int, heads: int) -> torch.Tensor:
    """The symmetric doubly-stochastic prior of W_G: (N, N).

    H == T: TokenMixer's regrouping permutation itself. H != T: its symmetric part
    (P + P^T) / 2, because the constrained W_G is symmetric (a non-symmetric permutation
    is not reachable); it still sends head h of every token towards the same new token.
    H == 1 or T == 1 makes the regrouping the identity.
    """
    perm = regrouping_permutation(n_tokens, heads)
    return 0.5 * (perm + perm.T)


# Scale of the learned logits at init: sym(W) / tau is at most ~0.2 nats at tau = 0.05, so the
# constrained matrices start at the prior mixture, and what moves them later is learning.
INIT_STD = 0.01


class UniMixing(SinkhornMixing):
    """Full UniMixing: per-block W_B (N, B, B) and a dense W_G (N, N).

    (T, batch, D) -> (T, batch, D). Params N*B^2 + N^2; no per-step multiply-adds
    beyond Sinkhorn's. Constrained matrices (see ``sinkhorn.constrain``):
    W_B[n] = Sinkhorn(log(I/2 + 1/(2B)) + sym(local_raw[n]) / tau) and
    W_G = Sinkhorn(log(prior/2 + 1/(2N)) + sym(global_raw) / tau), prior = ``global_prior``.
    The raw parameters start near 0, so at init W_B = I/2 + J/(2B) (diagonal 1/2 + 1/(2B))
    and W_G = prior/2 + J/(2N) at every temperature.
    """

    def __init__(self, n_tokens: int, d_model: int, heads: int, tau: float, tol: float, max_iters: int) -> None:
        super().__init__(tau, tol, max_iters)
        self.heads = heads
        n, b = n_tokens * heads, d_model // heads
        self.local_raw = nn.Parameter(INIT_STD * torch.randn(n, b, b))
        self.global_raw = nn.Parameter(INIT_STD * torch.randn(n, n))
        self.register_buffer("local_prior", torch.eye(b), persistent=False)
        self.register_buffer("global_prior", global_prior(n_tokens, heads), persistent=False)

    def build_matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            constrain(self.local_raw, self.tau, self.local_prior, self.tol, self.max_iters),
            constrain(self.global_raw, self.tau, self.global_prior, self.tol, self.max_iters),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local, global_ = self.matrices()
        return apply_unimixing(x, local, global_, self.heads)


class UniMixingLite(SinkhornMixing):
    """UniMixing-Lite: W_B[n] = Sinkhorn(log-prior + sym(sum_l coef[n, l] * Z_l) / tau) from b
    shared bases, and a low-rank global W_G = Sinkhorn(log-prior + sym(A @ Bm) / tau),
    A: (N, r), Bm: (r, N); priors as in :class:`UniMixing`.

    (T, batch, D) -> (T, batch, D). Params 2*N*r + b*B^2 + N*b. Per-step multiply-adds
    (independent of batch): N^2*r for A @ Bm plus N*b*B^2 for the basis combination.

    The prior is added to the combination, not to each basis, so the bases are free to
    differ: they start as independent unit-scale random directions Z_l (b of them span a
    b-dimensional family of local logits) and the coefficients as small random weights
    (combination entries ~ INIT_STD). Hence two configs differing only in ``bases``
    compute different functions from the start and can learn different things; with every
    basis at the identity (the former init) any combination was the identity.
    """

    def __init__(
        self, n_tokens: int, d_model: int, heads: int, rank: int, bases: int, tau: float, tol: float, max_iters: int
    ) -> None:
        super().__init__(tau, tol, max_iters)
        self.heads = heads
        n, b = n_tokens * heads, d_model // heads
        self.block = b
        self.bases = nn.Parameter(torch.randn(bases, b, b))
        self.coefficients = nn.Parameter((INIT_STD / math.sqrt(bases)) * torch.randn(n, bases))
        std = math.sqrt(INIT_STD / math.sqrt(rank))  # entries of A @ Bm start with std ~INIT_STD
        self.global_left = nn.Parameter(std * torch.randn(n, rank))
        self.global_right = nn.Parameter(std * torch.randn(rank, n))
        self.register_buffer("local_prior", torch.eye(b), persistent=False)
        self.register_buffer("global_prior", global_prior(n_tokens, heads), persistent=False)

    def build_matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        n, b = self.coefficients.shape[0], self.block
        local_logits = torch.mm(self.coefficients, self.bases.reshape(-1, b * b)).view(n, b, b)
        global_logits = torch.mm(self.global_left, self.global_right)
        return (
            constrain(local_logits, self.tau, self.local_prior, self.tol, self.max_iters),
            constrain(global_logits, self.tau, self.global_prior, self.tol, self.max_iters),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local, global_ = self.matrices()
        return apply_unimixing(x, local, global_, self.heads)
