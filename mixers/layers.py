"""Small shared layers: RMSNorm and per-token linear maps.

Inside the block stack, activations are laid out tokens-first, ``(T, batch, D)``, so
that "each token its own weights" is one ``bmm`` with no permutes, and so that fvcore
counts every multiply-add exactly (it prices ``bmm``/``mm``/``linear`` exactly but
``einsum`` only by estimate).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """RMSNorm over the last dim with a learned scale. Shape-preserving: (..., D) -> (..., D).

    Uses ``F.rms_norm`` so that a trace shows one ``aten::rms_norm`` op, which the
    profiler prices like fvcore's layer_norm (5 per element with affine).
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class PerTokenLinear(nn.Module):
    """T independent affine maps: (T, batch, in_dim) -> (T, batch, out_dim).

    weight: (T, in_dim, out_dim), bias: (T, 1, out_dim). Initialised like nn.Linear.
    """

    def __init__(self, n_tokens: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(n_tokens, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_tokens, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.bmm(x, self.weight) + self.bias


class PerTokenSwiGLU(nn.Module):
    """Per-token SwiGLU FFN: (T, batch, D) -> (T, batch, D), hidden width h.

    out_t = W_down^t ((W_up^t x_t + b) * SiLU(W_gate^t x_t + b)) + b; up and gate are
    fused into one (T, D, 2h) weight. Multiply-adds per sample: 3*T*D*h.
    """

    def __init__(self, n_tokens: int, d_model: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.up_gate = PerTokenLinear(n_tokens, d_model, 2 * hidden)
        self.down = PerTokenLinear(n_tokens, hidden, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up, gate = self.up_gate(x).split(self.hidden, dim=-1)
        return self.down(up * F.silu(gate))


class PerTokenGELUFFN(nn.Module):
    """RankMixer's per-token two-layer GELU FFN: (T, batch, D) -> (T, batch, D), hidden h.

    Multiply-adds per sample: 2*T*D*h, matching the RankMixer paper's size formulas.
    """

    def __init__(self, n_tokens: int, d_model: int, hidden: int) -> None:
        super().__init__()
        self.up = PerTokenLinear(n_tokens, d_model, hidden)
        self.down = PerTokenLinear(n_tokens, hidden, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))
