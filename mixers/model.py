"""The model interface every family shares, and the ranking model of the block families.

``build_model(config)`` returns a :class:`CTRModel`, whatever the family:

- ``model(dense: float[batch, num_dense], sparse: long[batch, C]) -> logits[batch]``;
- ``embedding_tables()``: every embedding table, each an ``nn.Embedding`` (a trainer may
  set ``table.sparse = True`` for sparse gradients); ``embedding_parameters()`` their
  weights, ``dense_parameters()`` everything else;
- ``embedding_penalty(sparse) -> scalar``: mean over the batch of the sum of squares of
  every embedding row the sample looks up (all tables); a trainer multiplies it by its
  L2 coefficient. It looks rows up through the tables' modules, so it follows
  ``table.sparse`` too;
- ``set_temperature(tau)`` and ``uses_temperature`` (Sinkhorn-constrained mixing only);
- ``lookup(sparse) -> rows[batch, C, w]`` and ``forward_rows(dense, rows) -> logits[batch]``:
  the forward pass cut after the table lookups, so that another build of the tables (TorchRec)
  feeds the same dense stack.

:class:`RankingModel` is the block families' model: tokenizer -> stacked family blocks ->
mean-pool -> linear CTR head.
"""

from __future__ import annotations

import torch
from torch import nn
from unimixer_plan.mixers.config import ModelConfig
from unimixer_plan.mixers.registry import get_family
from unimixer_plan.mixers.sinkhorn import SinkhornMixing
from unimixer_plan.mixers.stacking import PostNormStack, SiameseStack
from unimixer_plan.mixers.tokenizer import FeatureTokenizer


class CTRModel(nn.Module):
    """Base of every model ``build_model`` returns; subclasses set ``config`` and implement
    ``forward`` and ``embedding_penalty`` (see the module docstring for the contract)."""

    config: ModelConfig

    def embedding_tables(self) -> list[nn.Embedding]:
        return [m for m in self.modules() if isinstance(m, nn.Embedding)]

    def embedding_parameters(self) -> list[nn.Parameter]:
        return [table.weight for table in self.embedding_tables()]

    def dense_parameters(self) -> list[nn.Parameter]:
        embedding = {id(p) for p in self.embedding_parameters()}
        return [p for p in self.parameters() if id(p) not in embedding]

    def lookup(self, sparse: torch.Tensor) -> torch.Tensor:
        """sparse (batch, C) long -> rows (batch, C, w): each field's looked-up row, the columns of
        every table of the model side by side, in ``embedding_tables()`` order (w = their widths' sum)."""
        raise NotImplementedError

    def forward_rows(self, dense: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """dense (batch, num_dense), rows (batch, C, w) as ``lookup`` gives them -> logits (batch,).

        ``forward(dense, sparse)`` equals ``forward_rows(dense, lookup(sparse))``; a build whose
        tables live elsewhere (TorchRec, ``mixers.torchrec_model``) calls this with its own rows.
        """
        raise NotImplementedError

    def set_temperature(self, tau: float) -> None:
        """Set the Sinkhorn temperature of every mixing layer (no-op for other families)."""
        for module in self.modules():
            if isinstance(module, SinkhornMixing):
                module.set_temperature(tau)

    @property
    def uses_temperature(self) -> bool:
        return any(isinstance(m, SinkhornMixing) for m in self.modules())


class RankingModel(CTRModel):
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

    def lookup(self, sparse: torch.Tensor) -> torch.Tensor:
        return self.tokenizer.lookup(sparse)

    def forward_rows(self, dense: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        tokens = self.stack(self.tokenizer.tokens(dense, rows))  # (T, batch, D)
        return self.head(tokens.mean(dim=0)).squeeze(-1)

    def embedding_penalty(self, sparse: torch.Tensor) -> torch.Tensor:
        return self.tokenizer.embedding_penalty(sparse).mean()


def build_model(config: ModelConfig) -> CTRModel:
    """Build the architecture ``config`` describes (weights freshly initialised)."""
    family = get_family(config.family)
    if family.build_model is not None:
        return family.build_model(config)
    return RankingModel(config)
