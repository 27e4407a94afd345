"""The ranking model: tokenizer -> stacked family blocks -> mean-pool -> linear CTR head."""

from __future__ import annotations

import torch
from torch import nn
from unimixer_plan.mixers.config import ModelConfig
from unimixer_plan.mixers.registry import get_family
from unimixer_plan.mixers.sinkhorn import SinkhornMixing
from unimixer_plan.mixers.stacking import PostNormStack, SiameseStack
from unimixer_plan.mixers.tokenizer import FeatureTokenizer


class RankingModel(nn.Module):
    """model(dense: float[batch, num_dense], sparse: long[batch, C]) -> logits[batch]."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        family = get_family(config.family)
        self.tokenizer = FeatureTokenizer(config)
        blocks = [family.build_block(config) for _ in range(config.depth)]
        self.stack = SiameseStack(blocks, config.d_model) if family.stacking == "siamese" else PostNormStack(*blocks)
        self.head = nn.Linear(config.d_model, 1)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        tokens = self.stack(self.tokenizer(dense, sparse))  # (T, batch, D)
        return self.head(tokens.mean(dim=0)).squeeze(-1)

    def set_temperature(self, tau: float) -> None:
        """Set the Sinkhorn temperature of every mixing layer (no-op for other families)."""
        for module in self.modules():
            if isinstance(module, SinkhornMixing):
                module.set_temperature(tau)

    @property
    def uses_temperature(self) -> bool:
        return any(isinstance(m, SinkhornMixing) for m in self.modules())

    def embedding_penalty(self, sparse: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of the squared norm of the rows looked up: (batch, C) -> scalar."""
        if not self.tokenizer.offsets.numel():
            return torch.zeros(())
        rows = self.tokenizer.embedding(sparse + self.tokenizer.offsets)
        return rows.pow(2).sum() / sparse.shape[0]

    def embedding_parameters(self) -> list[nn.Parameter]:
        return [self.tokenizer.embedding.weight]

    def dense_parameters(self) -> list[nn.Parameter]:
        embedding = {id(p) for p in self.embedding_parameters()}
        return [p for p in self.parameters() if id(p) not in embedding]


def build_model(config: ModelConfig) -> RankingModel:
    """Build the architecture ``config`` describes (weights freshly initialised)."""
    return RankingModel(config)
