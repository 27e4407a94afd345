"""``attention``: multi-head self-attention over the T tokens, the attention reference.

One layer, (T, batch, D) -> (T, batch, D):
S = RMSNorm(X + MHSA(X)); X' = RMSNorm(S + SwiGLU(S)), with the same per-token SwiGLU as
the UniMixer families so that only the mixing differs. Scores and values use bmm,
since profilers count fused attention kernels as zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from unimixer_plan.mixers.config import ModelConfig
from unimixer_plan.mixers.layers import PerTokenSwiGLU, RMSNorm
from unimixer_plan.mixers.registry import STACK_DEFAULTS, STACK_KNOBS, BlockCost, MixerFamily, register, require_divides


class SelfAttention(nn.Module):
    """(T, batch, D) -> (T, batch, D) with H heads of width D/H (input-dependent mixing)."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, batch, d = x.shape
        head_dim = d // self.heads
        # (T, batch, 3D) -> 3 x (batch*H, T, head_dim)
        q, k, v = (
            part.reshape(t, batch * self.heads, head_dim).transpose(0, 1) for part in self.qkv(x).chunk(3, dim=-1)
        )
        scores = torch.bmm(q * (1.0 / math.sqrt(head_dim)), k.transpose(1, 2))  # (batch*H, T, T)
        context = torch.bmm(scores.softmax(dim=-1), v)  # (batch*H, T, head_dim)
        return self.out(context.transpose(0, 1).reshape(t, batch, d))


class AttentionBlock(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attention = SelfAttention(config.d_model, config.heads)
        self.attention_norm = RMSNorm(config.d_model)
        self.ffn = PerTokenSwiGLU(config.n_tokens, config.d_model, config.ffn_hidden)
        self.ffn_norm = RMSNorm(config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.attention_norm(x + self.attention(x))
        return self.ffn_norm(s + self.ffn(s))


def _cost(config: ModelConfig) -> BlockCost:
    t, d, h = config.n_tokens, config.d_model, config.ffn_hidden
    attention = 4 * t * d * d + 2 * t * t * d
    return BlockCost(
        macs=attention + 3 * t * d * h + 2 * 5 * t * d,
        step_macs=0,
        params=4 * d * d + 4 * d + 3 * t * d * h + t * (2 * h + d) + 2 * d,
    )


register(
    MixerFamily(
        name="attention",
        summary="Multi-head self-attention over tokens with per-token SwiGLU (reference)",
        knobs=STACK_KNOBS | {"heads"},
        knob_defaults=STACK_DEFAULTS,
        stacking="post_norm",
        build_block=AttentionBlock,
        block_cost=_cost,
        rules=require_divides,
    )
)
