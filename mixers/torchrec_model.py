"""The TorchRec build of any family: the tables as an EmbeddingBagCollection, the project's stack on top.

``build_torchrec_model(config)`` returns a :class:`TorchRecModel` with

- ``sparse_arch``: a ``torchrec.EmbeddingBagCollection`` with one ``EmbeddingBagConfig`` per
  categorical field (``mixers.embedding_tables``: table ``t_C{i+1}``, feature ``C{i+1}``,
  ``cardinalities[i]`` rows of the family's row width w, stored padded with zero columns to a
  multiple of 4 as FBGEMM needs; sum pooling). Each sample looks up exactly one id per feature, so
  a pooled bag is that id's row;
- ``dense_arch``: the project's own model (``build_model``) with its tables taken out, unchanged
  otherwise; it takes the pooled rows through ``CTRModel.forward_rows``.

``model(dense: float[B, num_dense], features: KeyedJaggedTensor) -> logits[B]``, where
``features`` (from :func:`features_of`) holds for every feature key, in table order, B lengths of
1 and B ids. That is the module ``DistributedModelParallel`` shards (``sparse_arch`` by TorchRec's
planner, ``dense_arch`` in DDP).

Weights map both ways (:meth:`TorchRecModel.state_from_project`, :meth:`TorchRecModel.project_state`):
the project keeps every field's rows in one concatenated ``nn.Embedding`` per kind, field i at rows
``field_offsets[i] .. + cardinalities[i]``; TorchRec keeps table i alone. fm has two project
tables (weights, width 1; factors, width e) that become the two column blocks of one TorchRec row.

torchrec is optional (``pip install 'unimixer-plan[torchrec]'``): nothing imports this module
unless TorchRec is asked for, and :func:`require_torchrec` says how to install it when it is missing.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from unimixer_plan.errors import ConfigError, PlanError
from unimixer_plan.mixers.config import ModelConfig
from unimixer_plan.mixers.embedding_tables import embedding_tables, feature_names
from unimixer_plan.mixers.model import CTRModel, build_model
from unimixer_plan.mixers.tokenizer import field_offsets

if TYPE_CHECKING:
    from torchrec import KeyedJaggedTensor

TORCHREC_VERSION = "1.8.0"
INSTALL_HINT = (
    f"install: pip install --no-deps torchrec=={TORCHREC_VERSION} && pip install 'unimixer-plan[torchrec]' "
    f"(CPU; on a GPU: pip install torchrec=={TORCHREC_VERSION} fbgemm-gpu=={TORCHREC_VERSION})"
)
SPARSE_ARCH = "sparse_arch"  # the module path DistributedModelParallel shards


def require_torchrec(asked_by: str) -> ModuleType:
    """Import torchrec, or raise PlanError naming ``asked_by`` (the option that needs it) and the install."""
    try:
        with warnings.catch_warnings():
            # fbgemm_gpu's import warns about optional kernels (SSD, ...) that the CPU build lacks.
            warnings.simplefilter("ignore")
            return importlib.import_module("torchrec")
    except (ImportError, OSError) as err:  # OSError: an fbgemm built for another torch (undefined symbols)
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise PlanError(f"{asked_by}: needs TorchRec, which cannot be imported ({reason}); {INSTALL_HINT}") from None


def features_of(sparse: torch.Tensor, keys: list[str]) -> KeyedJaggedTensor:
    """sparse (B, C) long -> a KeyedJaggedTensor with keys ``keys`` (C of them), one id per key and
    sample: values (C*B,) key-major (all of key 0's ids, then key 1's, ...), lengths (C*B,) of 1."""
    from torchrec import KeyedJaggedTensor

    batch, fields = sparse.shape
    return KeyedJaggedTensor(
        keys=keys,
        values=sparse.t().reshape(-1),
        lengths=torch.ones(fields * batch, dtype=torch.int32, device=sparse.device),
    )


class TorchRecModel(nn.Module):
    """model(dense: float[B, num_dense], features: KeyedJaggedTensor) -> logits[B]; with
    ``penalty=True`` also the (B,) sum of squares of each sample's looked-up rows (the project's
    embedding L2, ``CTRModel.embedding_penalty`` before its batch mean)."""

    def __init__(self, config: ModelConfig, device: torch.device | str = "cpu") -> None:
        super().__init__()
        torchrec = require_torchrec("the TorchRec build")
        if not config.cardinalities:
            raise ConfigError("cardinalities", [], "a TorchRec build needs at least one categorical field to shard")
        self.config = config
        self.specs = embedding_tables(config).tables
        self.keys = feature_names(config)
        self.row_width = self.specs[0].dim  # what the dense stack reads
        self.table_width = self.specs[0].torchrec_dim  # what TorchRec stores (padded to a multiple of 4)
        self.sparse_arch = torchrec.EmbeddingBagCollection(
            tables=[
                torchrec.EmbeddingBagConfig(
                    name=spec.name,
                    embedding_dim=spec.torchrec_dim,
                    num_embeddings=spec.rows,
                    feature_names=[spec.feature],
                    pooling=torchrec.PoolingType.SUM,
                )
                for spec in self.specs
            ],
            device=torch.device(device),
        )
        # The dense stack does not depend on the table sizes, so it is built with one-row tables
        # (cheap whatever the real cardinalities), which are then taken out.
        self.dense_arch = build_model(config.replace(cardinalities=(1,) * len(config.cardinalities)))
        self.project_tables: list[tuple[str, int]] = []  # (state-dict key, width), in lookup order
        for name, module in list(self.dense_arch.named_modules()):
            if isinstance(module, nn.Embedding):
                self.project_tables.append((f"{name}.weight", module.embedding_dim))
                parent, _, child = name.rpartition(".")
                setattr(self.dense_arch.get_submodule(parent) if parent else self.dense_arch, child, None)
        if sum(width for _, width in self.project_tables) != self.row_width:
            raise PlanError(f"family {config.family}: row width {self.row_width} does not match its tables")

    def forward(
        self, dense: torch.Tensor, features: KeyedJaggedTensor, penalty: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        pooled = self.sparse_arch(features)  # KeyedTensor: (B, w) per key
        # A sharded collection returns its keys grouped by the rank that owns them, not in table order.
        values = pooled.values() if pooled.keys() == self.keys else torch.cat([pooled[k] for k in self.keys], dim=1)
        rows = values.view(dense.shape[0], len(self.keys), self.table_width)[..., : self.row_width]  # (B, C, w)
        logits = self.dense_arch.forward_rows(dense, rows)  # (B,)
        if penalty:
            return logits, rows.pow(2).sum(dim=(1, 2))
        return logits

    def table_key(self, index: int) -> str:
        return f"{SPARSE_ARCH}.embedding_bags.{self.specs[index].name}.weight"

    def state_from_project(self, project: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The project build's state dict (``build_model(config).state_dict()``) as this module's."""
        table_keys = {key for key, _ in self.project_tables}
        # (sum of rows, w): every project table's columns side by side, as CTRModel.lookup gives them.
        rows = torch.cat([project[key] for key, _ in self.project_tables], dim=1)
        rows = nn.functional.pad(rows, (0, self.table_width - self.row_width))  # FBGEMM's padding columns: 0
        state = {f"dense_arch.{k}": v for k, v in project.items() if k not in table_keys}
        for index, (start, spec) in enumerate(zip(field_offsets(self.config.cardinalities), self.specs, strict=True)):
            state[self.table_key(index)] = rows[int(start) : int(start) + spec.rows].clone()
        return state

    def project_state(self, state: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """This module's state dict (default: its own) as the project build's."""
        state = self.state_dict() if state is None else state
        rows = torch.cat([state[self.table_key(i)] for i in range(len(self.specs))], dim=0)  # (sum, w)
        prefix = "dense_arch."
        project = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        column = 0
        for key, width in self.project_tables:
            project[key] = rows[:, column : column + width].clone()
            column += width
        return project


def build_torchrec_model(config: ModelConfig, device: torch.device | str = "cpu") -> TorchRecModel:
    """The TorchRec build of ``config`` (fresh weights; ``device="meta"`` allocates no table, for planning)."""
    return TorchRecModel(config, device)


def from_project(model: CTRModel, device: torch.device | str = "cpu") -> TorchRecModel:
    """The TorchRec build carrying ``model``'s weights (same logits within float rounding)."""
    torchrec_model = TorchRecModel(model.config, device)
    torchrec_model.load_state_dict(torchrec_model.state_from_project(model.state_dict()))
    return torchrec_model


def to_project(model: TorchRecModel) -> CTRModel:
    """The project build carrying ``model``'s (unsharded) weights."""
    project = build_model(model.config)
    project.load_state_dict(model.project_state())
    return project


def describe(model: TorchRecModel) -> dict[str, Any]:
    """The input contract, for exports: feature keys in table order, one id per key and sample."""
    return {
        "dense": f"float32 (batch, {model.config.num_dense})",
        "features": "KeyedJaggedTensor: one id per key per sample (lengths all 1), sum pooling",
        "keys": list(model.keys),
        "row_width": model.row_width,
        "table_width": model.table_width,
    }
