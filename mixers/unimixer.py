"""The UniMixer families: ``unimixer`` (full UniMixing) and ``unimixing_lite``.

One block (T, batch, D) -> (T, batch, D): O = SwiGLU(RMSNorm(h + UniMixing(h))). Blocks
are stacked with SiameseNorm (see ``unimixer_plan.mixers.stacking``), so the block returns the update.
"""

from __future__ import annotations

import torch
from torch import nn
from unimixer_plan.errors import ConfigError
from unimixer_plan.mixers.config import ModelConfig
from unimixer_plan.mixers.layers import PerTokenSwiGLU, RMSNorm
from unimixer_plan.mixers.registry import STACK_DEFAULTS, STACK_KNOBS, BlockCost, MixerFamily, register, require_divides
from unimixer_plan.mixers.unimixing import UniMixing, UniMixingLite


class UniMixerBlock(nn.Module):
    """(T, batch, D) -> (T, batch, D): per-token SwiGLU of RMSNorm(h + mixing(h))."""

    def __init__(self, config: ModelConfig, mixing: nn.Module) -> None:
        super().__init__()
        self.mixing = mixing
        self.norm = RMSNorm(config.d_model)
        self.ffn = PerTokenSwiGLU(config.n_tokens, config.d_model, config.ffn_hidden)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.norm(h + self.mixing(h)))


def _shared_block_cost(config: ModelConfig) -> BlockCost:
    """Norm + SwiGLU + UniMixing's per-sample multiply-adds (L*B local + L^2/B global)."""
    t, d, h = config.n_tokens, config.d_model, config.ffn_hidden
    b = d // config.heads
    n = t * config.heads
    macs = n * b * b + n * n * b + 5 * t * d + 3 * t * d * h
    params = d + 3 * t * d * h + t * (2 * h + d)
    return BlockCost(macs=macs, step_macs=0, params=params)


def _unimixer_cost(config: ModelConfig) -> BlockCost:
    shared = _shared_block_cost(config)
    n, b = config.n_tokens * config.heads, config.d_model // config.heads
    return BlockCost(macs=shared.macs, step_macs=0, params=shared.params + n * b * b + n * n)


def _lite_cost(config: ModelConfig) -> BlockCost:
    shared = _shared_block_cost(config)
    n, b = config.n_tokens * config.heads, config.d_model // config.heads
    r, nb = config.rank, config.bases
    return BlockCost(
        macs=shared.macs,
        step_macs=n * n * r + n * nb * b * b,
        params=shared.params + 2 * n * r + nb * b * b + n * nb,
    )


def _lite_rules(config: ModelConfig) -> None:
    require_divides(config)
    n = config.n_tokens * config.heads
    if config.rank > n:
        raise ConfigError("rank", config.rank, f"must be <= N = n_tokens*heads = {n} (family unimixing_lite)")


register(
    MixerFamily(
        name="unimixer",
        summary="UniMixing: per-block Sinkhorn local matrices and a dense Sinkhorn global matrix",
        knobs=STACK_KNOBS | {"heads"},
        knob_defaults=STACK_DEFAULTS,
        stacking="siamese",
        build_block=lambda c: UniMixerBlock(
            c, UniMixing(c.n_tokens, c.d_model, c.heads, c.tau_start, c.sinkhorn_tol, c.sinkhorn_max_iters)
        ),
        block_cost=_unimixer_cost,
        rules=require_divides,
    )
)

register(
    MixerFamily(
        name="unimixing_lite",
        summary="UniMixing-Lite: shared local bases and a rank-r global matrix before Sinkhorn",
        knobs=STACK_KNOBS | {"heads", "rank", "bases"},
        knob_defaults=STACK_DEFAULTS,
        stacking="siamese",
        build_block=lambda c: UniMixerBlock(
            c,
            UniMixingLite(
                c.n_tokens, c.d_model, c.heads, c.rank, c.bases, c.tau_start, c.sinkhorn_tol, c.sinkhorn_max_iters
            ),
        ),
        block_cost=_lite_cost,
        rules=_lite_rules,
    )
)
