"""``rankmixer``: TokenMixer + per-token GELU FFN with post-norm residuals (RankMixer, 2025).

One layer, (T, batch, D) -> (T, batch, D):
S = LayerNorm(X + TokenMixer(X)); X' = LayerNorm(S + PFFN(S)). TokenMixer needs H == T.
Size follows the paper: params ~ 2kTD^2, FLOPs ~ 4kTD^2 per sample per layer.
"""

from __future__ import annotations

import torch
from torch import nn
from unimixer_plan.errors import ConfigError
from unimixer_plan.mixers.config import ModelConfig
from unimixer_plan.mixers.layers import PerTokenGELUFFN
from unimixer_plan.mixers.registry import STACK_DEFAULTS, STACK_KNOBS, BlockCost, MixerFamily, register, require_divides
from unimixer_plan.mixers.unimixing import token_mix


class RankMixerBlock(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.mix_norm = nn.LayerNorm(config.d_model)
        self.ffn = PerTokenGELUFFN(config.n_tokens, config.d_model, config.ffn_hidden)
        self.ffn_norm = nn.LayerNorm(config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.mix_norm(x + token_mix(x, self.heads))
        return self.ffn_norm(s + self.ffn(s))


def _cost(config: ModelConfig) -> BlockCost:
    t, d, h = config.n_tokens, config.d_model, config.ffn_hidden
    return BlockCost(
        macs=2 * t * d * h + 2 * 5 * t * d,
        step_macs=0,
        params=2 * t * d * h + t * (h + d) + 2 * 2 * d,
    )


def _rules(config: ModelConfig) -> None:
    if config.heads != config.n_tokens:
        raise ConfigError("heads", config.heads, f"must equal n_tokens={config.n_tokens} (TokenMixer regrouping)")
    require_divides(config)


register(
    MixerFamily(
        name="rankmixer",
        summary="RankMixer: parameter-free TokenMixer regrouping and per-token GELU FFN",
        knobs=STACK_KNOBS | {"heads"},
        knob_defaults=STACK_DEFAULTS,
        stacking="post_norm",
        build_block=RankMixerBlock,
        block_cost=_cost,
        rules=_rules,
    )
)
