"""UniMixing and UniMixing-Lite: learned, Sinkhorn-constrained token mixing.

Notation (DESIGN.md section 2): T tokens of width D, H heads, block size B = D / H,
N = T * H blocks, L = T * D. A sample's flattened X is cut into N blocks of B values;
block n = (token n // H, head n % H).

- local step: block n is multiplied by its own B x B matrix W_B[n] (x_n W_B[n]);
- global step: output block m = sum_n W_G[m, n] * block n, with W_G of shape N x N.

Both are constrained by :func:`unimixer_plan.mixers.sinkhorn.constrain`. Multiply-adds per sample:
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
    """The N x N block permutation that makes UniMixing equal TokenMixer (H == T).

    Output block m = (new token h, slot t) takes input block n = (token t, head h).
    """
    n = n_tokens * heads
    perm = torch.zeros(n, n)
    for t in range(n_tokens):
        for h in range(heads):
            perm[h * n_tokens + t, t * heads + h] = 1.0
    return perm


class UniMixing(SinkhornMixing):
    """Full UniMixing: per-block W_B (N, B, B) and a dense W_G (N, N).

    (T, batch, D) -> (T, batch, D). Params N*B^2 + N^2; no per-step multiply-adds
    beyond Sinkhorn's element-wise work.
    """

    def __init__(self, n_tokens: int, d_model: int, heads: int, tau: float, iters: int) -> None:
        super().__init__(tau, iters)
        self.heads = heads
        n, b = n_tokens * heads, d_model // heads
        # Local matrices start near identity (the TokenMixer prior); global starts uniform-ish.
        self.local_raw = nn.Parameter(torch.eye(b).expand(n, b, b).clone() + 0.1 * torch.randn(n, b, b))
        self.global_raw = nn.Parameter(0.1 * torch.randn(n, n))

    def build_matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        return constrain(self.local_raw, self.tau, self.iters), constrain(self.global_raw, self.tau, self.iters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local, global_ = self.matrices()
        return apply_unimixing(x, local, global_, self.heads)


class UniMixingLite(SinkhornMixing):
    """UniMixing-Lite: W_B[n] = Sinkhorn(sum_l coef[n, l] * Z_l) from b shared bases,
    and a low-rank global W_G = Sinkhorn(A @ Bm), A: (N, r), Bm: (r, N).

    (T, batch, D) -> (T, batch, D). Params 2*N*r + b*B^2 + N*b. Per-step multiply-adds
    (independent of batch): N^2*r for A @ Bm plus N*b*B^2 for the basis combination.
    """

    def __init__(self, n_tokens: int, d_model: int, heads: int, rank: int, bases: int, tau: float, iters: int) -> None:
        super().__init__(tau, iters)
        self.heads = heads
        n, b = n_tokens * heads, d_model // heads
        self.block = b
        self.bases = nn.Parameter(torch.eye(b).expand(bases, b, b).clone() + 0.1 * torch.randn(bases, b, b))
        self.coefficients = nn.Parameter(torch.full((n, bases), 1.0 / bases) + 0.1 * torch.randn(n, bases))
        std = math.sqrt(0.1 / math.sqrt(rank))  # entries of A @ Bm start with std ~0.1
        self.global_left = nn.Parameter(std * torch.randn(n, rank))
        self.global_right = nn.Parameter(std * torch.randn(rank, n))

    def build_matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        n, b = self.coefficients.shape[0], self.block
        local_logits = torch.mm(self.coefficients, self.bases.reshape(-1, b * b)).view(n, b, b)
        global_logits = torch.mm(self.global_left, self.global_right)
        return constrain(local_logits, self.tau, self.iters), constrain(global_logits, self.tau, self.iters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local, global_ = self.matrices()
        return apply_unimixing(x, local, global_, self.heads)
