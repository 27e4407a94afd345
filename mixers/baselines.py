"""Baselines every mixer must beat: logistic regression (``lr``) and a factorization machine (``fm``).

Both are whole-model families with the shared interface (``model.CTRModel``):
dense (batch, num_dense) float, sparse (batch, C) long -> logits (batch,). They use no
architecture knob (n_tokens, d_model, ... stay None); the schema alone sizes them.

- ``lr``: logit = b + sum_i w_i x_i (dense fields) + sum_c u[id_c] (one scalar weight per
  categorical id, a width-1 table). Its config has ``embed_dim = 1``, so that one LR has
  exactly one config.
- ``fm``: lr + sum_{i<j} <v_i, v_j> over all F = num_dense + C fields, factor size
  ``embed_dim``; a categorical field's factor is its looked-up row, dense field i's is
  x_i * v_i. The pairwise term is Rendle's O(F*e) form
  0.5 * (||sum_i v_i||^2 - sum_i ||v_i||^2), written with bmm so that fvcore counts it.

Cost (project convention: per sample, dense part, 2 FLOPs per multiply-add as fvcore
counts them; lookups, element-wise work and reductions by sum are 0):
  lr: FLOPs = 2 * num_dense
  fm: FLOPs = 2 * (num_dense + 2 * F * e + e)   [dense linear, sum of factors, squared
      norm of the sum, sum of squared norms]
"""

from __future__ import annotations

import torch
from torch import nn
from unimixer_plan.errors import ConfigError
from unimixer_plan.mixers.config import ModelConfig
from unimixer_plan.mixers.model import CTRModel
from unimixer_plan.mixers.registry import MixerFamily, ModelCost, get_family, list_mixers, list_searchable, register
from unimixer_plan.mixers.tokenizer import EMBEDDING_INIT_STD, concatenated_table, field_offsets, squared_rows


class LogisticRegression(CTRModel):
    """(batch, num_dense), (batch, C) -> (batch,): b + w . x + sum_c u[id_c]."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("offsets", field_offsets(config.cardinalities), persistent=False)
        # Zero init: the model is convex in these weights, and a zero logit is the neutral start.
        self.weights = concatenated_table(config.cardinalities, 1)
        nn.init.zeros_(self.weights.weight)
        self.bias = nn.Parameter(torch.zeros(1))
        self.dense = nn.Linear(config.num_dense, 1, bias=False) if config.num_dense else None
        if self.dense is not None:
            nn.init.zeros_(self.dense.weight)

    def linear_logit(self, dense: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """dense (batch, num_dense), weights (batch, C, 1): each id's looked-up weight -> (batch,)."""
        logit = self.bias + weights.sum(dim=(1, 2))
        if self.dense is not None:
            logit = logit + self.dense(dense).squeeze(-1)
        return logit

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return self.linear_logit(dense, self.weights(sparse + self.offsets))

    def lookup(self, sparse: torch.Tensor) -> torch.Tensor:
        return self.weights(sparse + self.offsets)  # (batch, C, 1)

    def forward_rows(self, dense: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.linear_logit(dense, rows)

    def embedding_penalty(self, sparse: torch.Tensor) -> torch.Tensor:
        ids = sparse + self.offsets
        return sum(squared_rows(table, ids) for table in self.embedding_tables()).mean()


class FactorizationMachine(LogisticRegression):
    """(batch, num_dense), (batch, C) -> (batch,): the LR logit plus all pairwise factor products."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        e = config.embed_dim
        self.factors = concatenated_table(config.cardinalities, e)
        nn.init.normal_(self.factors.weight, std=EMBEDDING_INIT_STD)
        # Factors must start non-zero: at v = 0 the pairwise term has zero gradient.
        self.dense_factors = (
            nn.Parameter(EMBEDDING_INIT_STD * torch.randn(config.num_dense, e)) if config.num_dense else None
        )

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        ids = sparse + self.offsets
        return self.interactions(dense, self.weights(ids), self.factors(ids))

    def lookup(self, sparse: torch.Tensor) -> torch.Tensor:
        """(batch, C) -> (batch, C, 1 + e): each id's weight, then its factor."""
        ids = sparse + self.offsets
        return torch.cat([self.weights(ids), self.factors(ids)], dim=-1)

    def forward_rows(self, dense: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.interactions(dense, rows[..., :1], rows[..., 1:])

    def interactions(self, dense: torch.Tensor, weights: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
        """dense (batch, num_dense), weights (batch, C, 1), factors (batch, C, e) -> (batch,)."""
        batch = dense.shape[0]
        parts = [factors]  # (batch, C, e)
        if self.dense_factors is not None:
            parts.insert(0, dense.unsqueeze(-1) * self.dense_factors)  # (batch, num_dense, e)
        fields = torch.cat(parts, dim=1)  # (batch, F, e)
        n_fields = fields.shape[1]
        total = torch.bmm(fields.new_ones(batch, 1, n_fields), fields)  # (batch, 1, e): sum_i v_i
        flat = fields.reshape(batch, 1, -1)  # (batch, 1, F*e)
        square_of_sum = torch.bmm(total, total.transpose(1, 2))  # (batch, 1, 1)
        sum_of_squares = torch.bmm(flat, flat.transpose(1, 2))  # (batch, 1, 1)
        pairwise = 0.5 * (square_of_sum - sum_of_squares).view(batch)
        return self.linear_logit(dense, weights) + pairwise


def _table_rows(config: ModelConfig) -> int:
    return max(sum(config.cardinalities), 1)


def _lr_cost(config: ModelConfig) -> ModelCost:
    return ModelCost(
        macs=config.num_dense,
        step_macs=0,
        params_dense=config.num_dense + 1,
        params_embedding=_table_rows(config),
    )


def _fm_cost(config: ModelConfig) -> ModelCost:
    n, e = config.num_dense, config.embed_dim
    fields = config.num_fields
    return ModelCost(
        macs=n + 2 * fields * e + e,
        step_macs=0,
        params_dense=n + 1 + n * e,
        params_embedding=_table_rows(config) * (1 + e),
    )


def _lr_rules(config: ModelConfig) -> None:
    if config.embed_dim != 1:
        raise ConfigError("embed_dim", config.embed_dim, "must be 1 for family lr (one scalar weight per id)")


register(
    MixerFamily(
        name="lr",
        summary="Logistic regression: bias + dense linear + one weight per categorical id",
        knobs=frozenset(),
        rules=_lr_rules,
        baseline=True,
        build_model=LogisticRegression,
        model_cost=_lr_cost,
    )
)

register(
    MixerFamily(
        name="fm",
        summary="Factorization machine: logistic regression + pairwise factor interactions of all fields",
        knobs=frozenset(),
        baseline=True,
        build_model=FactorizationMachine,
        model_cost=_fm_cost,
        row_width=lambda config: 1 + config.embed_dim,
    )
)


def baseline_config(family: str, num_dense: int, cardinalities: tuple[int, ...], embed_dim: int) -> ModelConfig:
    """The config of baseline ``family`` (``lr`` or ``fm``) for a schema.

    ``embed_dim`` is the FM factor size; LR's tables have width 1, so its config records
    ``embed_dim = 1`` whatever is passed (one LR, one config).
    """
    if not get_family(family).baseline:
        baselines = sorted(set(list_mixers()) - set(list_searchable()))
        raise ConfigError("family", family, f"is not a baseline; baselines: {', '.join(baselines)}")
    return ModelConfig(
        family=family,
        num_dense=num_dense,
        cardinalities=tuple(cardinalities),
        embed_dim=1 if family == "lr" else embed_dim,
    )
