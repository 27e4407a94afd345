"""How blocks are stacked: SiameseNorm (UniMixer families) or plain post-norm."""

from __future__ import annotations

import torch
from torch import nn
from unimixer_plan.mixers.layers import RMSNorm


class SiameseStack(nn.Module):
    """SiameseNorm over blocks that return an update O: (T, batch, D) -> (T, batch, D).

    Two streams start as X = Y = input; per block O = block(X + RMSNorm(Y)),
    X = RMSNorm(X + O), Y = Y + O; the output is X + RMSNorm(Y).
    """

    def __init__(self, blocks: list[nn.Module], d_model: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.stream_norms = nn.ModuleList(RMSNorm(d_model) for _ in blocks)
        self.update_norms = nn.ModuleList(RMSNorm(d_model) for _ in blocks)
        self.out_norm = RMSNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for block, stream_norm, update_norm in zip(self.blocks, self.stream_norms, self.update_norms, strict=True):
            update = block(x + stream_norm(y))
            x = update_norm(x + update)
            y = y + update
        return x + self.out_norm(y)


class PostNormStack(nn.Sequential):
    """Blocks that carry their own residuals and norms, applied in order."""


def stack_cost(stacking: str, n_tokens: int, d_model: int, depth: int) -> tuple[int, int]:
    """(multiply-adds per sample, params) the stack adds around its blocks (fvcore units)."""
    if stacking == "siamese":
        return (2 * depth + 1) * 5 * n_tokens * d_model, (2 * depth + 1) * d_model
    return 0, 0
