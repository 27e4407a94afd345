"""``wukong``: Wukong's factorization-machine block beside a linear compression block.

One layer, (T, batch, D) -> (T, batch, D), with n_F = T - T//2 FM tokens and n_L = T//2
linear tokens: X' = LayerNorm(concat(FMB(X), LCB(X)) + X).
- FMB: FM(X) = X (X^T Y), Y: (T, r) learned ("rank" = r), flattened (T*r), LayerNorm,
  MLP T*r -> k*D -> n_F*D (GELU);
- LCB: W_L X with W_L: (n_L, T).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from unimixer_plan.errors import ConfigError
from unimixer_plan.mixers.config import ModelConfig
from unimixer_plan.mixers.registry import STACK_DEFAULTS, STACK_KNOBS, BlockCost, MixerFamily, register


def _token_split(n_tokens: int) -> tuple[int, int]:
    linear_tokens = n_tokens // 2
    return n_tokens - linear_tokens, linear_tokens


class WukongBlock(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        t, d, r, h = config.n_tokens, config.d_model, config.rank, config.ffn_hidden
        self.fm_tokens, linear_tokens = _token_split(t)
        self.fm_projection = nn.Parameter(torch.randn(t, r) / t**0.5)  # Y
        self.fm_norm = nn.LayerNorm(t * r)
        self.mlp_in = nn.Linear(t * r, h)
        self.mlp_out = nn.Linear(h, self.fm_tokens * d)
        self.compress = nn.Parameter(torch.randn(linear_tokens, t) / t**0.5)  # W_L
        self.out_norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, batch, d = x.shape
        flat = x.reshape(t, batch * d)
        summary = torch.mm(self.fm_projection.t(), flat).view(-1, batch, d)  # (r, batch, D) = (X^T Y)^T
        fm = torch.bmm(x.transpose(0, 1), summary.permute(1, 2, 0))  # (batch, T, r)
        hidden = F.gelu(self.mlp_in(self.fm_norm(fm.reshape(batch, -1))))
        fm_out = self.mlp_out(hidden).view(batch, self.fm_tokens, d).transpose(0, 1)
        linear_out = torch.mm(self.compress, flat).view(-1, batch, d)
        return self.out_norm(torch.cat([fm_out, linear_out], dim=0) + x)


def _cost(config: ModelConfig) -> BlockCost:
    t, d, r, h = config.n_tokens, config.d_model, config.rank, config.ffn_hidden
    fm_tokens, linear_tokens = _token_split(t)
    macs = 2 * r * t * d + 5 * t * r + t * r * h + h * fm_tokens * d + linear_tokens * t * d + 5 * t * d
    params = t * r + 2 * t * r + t * r * h + h + h * fm_tokens * d + fm_tokens * d + linear_tokens * t + 2 * d
    return BlockCost(macs=macs, step_macs=0, params=params)


def _rules(config: ModelConfig) -> None:
    if config.n_tokens < 2:
        raise ConfigError("n_tokens", config.n_tokens, "must be >= 2 for family wukong (FM and linear tokens)")


register(
    MixerFamily(
        name="wukong",
        summary="Wukong: FM interaction block X(X^T Y) + MLP beside a linear compression block",
        knobs=STACK_KNOBS | {"rank"},
        knob_defaults=STACK_DEFAULTS,
        stacking="post_norm",
        build_block=WukongBlock,
        block_cost=_cost,
        rules=_rules,
    )
)
