"""Feature tokenizer: raw fields -> T tokens of width D (RankMixer/UniMixer style)."""

from __future__ import annotations

import torch
from torch import nn
from unimixer_plan.mixers.config import ModelConfig
from unimixer_plan.mixers.layers import PerTokenLinear


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
        self.embedding = nn.Embedding(max(sum(config.cardinalities), 1), e)
        nn.init.normal_(self.embedding.weight, std=0.05)
        offsets = torch.tensor([0, *config.cardinalities[:-1]], dtype=torch.long).cumsum(0)
        self.register_buffer("offsets", offsets[: len(config.cardinalities)], persistent=False)
        self.dense_weight = nn.Parameter(torch.randn(config.num_dense, e) * 0.05)
        self.dense_bias = nn.Parameter(torch.zeros(config.num_dense, e))
        self.project = PerTokenLinear(config.n_tokens, config.chunk_width, config.d_model)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        batch = dense.shape[0]
        parts = [dense.unsqueeze(-1) * self.dense_weight + self.dense_bias]
        if self.offsets.numel():
            parts.append(self.embedding(sparse + self.offsets))
        flat = torch.cat(parts, dim=1).reshape(batch, -1)
        if self.pad:
            flat = nn.functional.pad(flat, (0, self.pad))
        chunks = flat.view(batch, self.n_tokens, self.chunk_width).transpose(0, 1)
        return self.project(chunks)
