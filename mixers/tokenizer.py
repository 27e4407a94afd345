"""Feature tokenizer: raw fields -> T tokens of width D (RankMixer/UniMixer style)."""

from __future__ import annotations

import torch
from torch import nn
from unimixer_plan.mixers.config import ModelConfig
from unimixer_plan.mixers.layers import PerTokenLinear

# Initial std of embedding rows: small, so that early logits stay near 0 whatever the field count.
EMBEDDING_INIT_STD = 0.05


def field_offsets(cardinalities: tuple[int, ...]) -> torch.Tensor:
    """(C,) long: the first row of each categorical field in one concatenated table."""
    return torch.tensor([0, *cardinalities[:-1]], dtype=torch.long).cumsum(0)[: len(cardinalities)]


def concatenated_table(cardinalities: tuple[int, ...], width: int) -> nn.Embedding:
    """One nn.Embedding holding every field's rows (at least one row, so a schema without
    categorical fields still builds; nothing looks that row up)."""
    return nn.Embedding(max(sum(cardinalities), 1), width)


def squared_rows(table: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
    """ids (batch, C) -> (batch,): sum of squares of the C rows each sample looks up.

    Looks up through the module, so a table switched to ``sparse=True`` gets sparse gradients.
    """
    return table(ids).pow(2).sum(dim=(1, 2))


class FeatureTokenizer(nn.Module):
    """dense (batch, num_dense) float, sparse (batch, C) long in [0, card_i) -> (T, batch, D).

    Each categorical field looks up its own table (one concatenated nn.Embedding with
    per-field offsets); each dense field x becomes x * w_f + b_f in R^e. The F*e
    embedding values are concatenated, zero-padded to T*d, cut into T chunks of width
    d = ceil(F*e / T), and chunk t gets its own projection d -> D. Tokens ignore field
    boundaries on purpose, as in the papers.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        e = config.embed_dim
        self.n_tokens = config.n_tokens
        self.chunk_width = config.chunk_width
        self.pad = config.n_tokens * config.chunk_width - config.num_fields * e
        self.embedding = concatenated_table(config.cardinalities, e)
        nn.init.normal_(self.embedding.weight, std=EMBEDDING_INIT_STD)
        self.register_buffer("offsets", field_offsets(config.cardinalities), persistent=False)
        self.dense_weight = nn.Parameter(torch.randn(config.num_dense, e) * EMBEDDING_INIT_STD)
        self.dense_bias = nn.Parameter(torch.zeros(config.num_dense, e))
        self.project = PerTokenLinear(config.n_tokens, config.chunk_width, config.d_model)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return self.tokens(dense, self.lookup(sparse) if self.offsets.numel() else None)

    def lookup(self, sparse: torch.Tensor) -> torch.Tensor:
        """sparse (batch, C) long -> (batch, C, e): the row each field looks up in its own table."""
        return self.embedding(sparse + self.offsets)

    def tokens(self, dense: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        """dense (batch, num_dense), rows (batch, C, e) or None (no categorical field) -> (T, batch, D).

        Takes the looked-up rows rather than ids, so that a TorchRec build (an
        EmbeddingBagCollection) feeds the same projection and stack.
        """
        batch = dense.shape[0]
        parts = [dense.unsqueeze(-1) * self.dense_weight + self.dense_bias]
        if rows is not None:
            parts.append(rows)
        flat = torch.cat(parts, dim=1).reshape(batch, -1)
        if self.pad:
            flat = nn.functional.pad(flat, (0, self.pad))
        chunks = flat.view(batch, self.n_tokens, self.chunk_width).transpose(0, 1)
        return self.project(chunks)

    def embedding_penalty(self, sparse: torch.Tensor) -> torch.Tensor:
        """sparse (batch, C) -> (batch,): sum of squares of the embedding rows each sample uses."""
        return squared_rows(self.embedding, sparse + self.offsets)
