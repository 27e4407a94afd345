"""Train one configuration to convergence on a fixed set of distinct samples, and evaluate it.

The protocol (DESIGN.md section 5.5) measures what an architecture can learn, not how fast it
leaves its initialisation:

- a trial's fidelity is the number of *distinct* training rows it sees; it trains several
  epochs over them (a seeded shuffle per epoch) up to ``max_epochs``;
- the learning rate warms up linearly, then decays: by ``lr_decay`` per epoch, and by a further
  ``plateau_decay`` after an epoch that did not improve;
- the Sinkhorn temperature anneals over the first ``anneal_epochs`` and stays at its final
  value after, so that every epoch a scheduler compares is past the anneal;
- after every epoch the model is scored on a fixed validation subsample (the same rows for every
  trial); training stops after ``patience`` epochs without improvement, the best epoch's weights
  are restored and scored on the whole validation split. Every number a result reports is the
  best checkpoint's, never the last step's;
- embedding rows are regularised by an L2 penalty on the rows a batch looks up, dense weights by
  decoupled weight decay; embedding tables have their own optimiser (sparse gradients).

A failure inside training (a non-finite loss, an error while running) is a result with status
"failed", never an exception that would kill a search. Deterministic by seed on CPU.
"""

from __future__ import annotations

import copy
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from unimixer_plan.data import CTRData, EncodedSplit
from unimixer_plan.mixers import ConfigError, CTRModel, ModelConfig, build_model
from unimixer_plan.training.batch_size import batch_size_for
from unimixer_plan.training.learning_rate import learning_rate_for
from unimixer_plan.training.loop import Checkpoint, Progress, Reporter, TrainResult, run_epochs
from unimixer_plan.training.metrics import SplitScore, logloss, roc_auc, score_logits

__all__ = ["Checkpoint", "Reporter", "TrainResult", "TrainSettings", "evaluate"]

EmbeddingOptimizer = Literal["adam", "sparse_adam", "adagrad"]


@dataclass(frozen=True)
class TrainSettings:
    """How a candidate is trained. ``learning_rate=None`` takes the rule in width and depth
    (``unimixer_plan.training.learning_rate``), ``batch_size=None`` the rule in the number of
    training rows (``unimixer_plan.training.batch_size``)."""

    batch_size: int | None = None
    learning_rate: float | None = None  # dense weights (Adam); None: learning_rate_for(config)
    embedding_learning_rate: float | None = None  # None: the dense rate (sparse_adam) or 10x it (adagrad)
    embedding_optimizer: EmbeddingOptimizer = "sparse_adam"
    embedding_l2: float = 1e-5  # x sum of squares of the looked-up rows, per sample
    weight_decay: float = 1e-4  # decoupled (AdamW) on dense weights
    max_epochs: int = 12
    patience: int = 2  # epochs without improvement before stopping
    min_delta: float = 1e-4  # a smaller logloss gain is no improvement
    warmup_steps: int = 50  # linear warm-up, capped at one epoch
    lr_decay: float = 0.9  # per epoch after the first
    plateau_decay: float = 0.3  # extra factor after an epoch without improvement
    anneal_epochs: float = 1.0  # tau goes tau_start -> tau_end over this many epochs, then stays
    ema_decay: float = 0.98  # > 0: validate and report an exponential moving average of the weights
    val_subsample: int = 8_192  # rows scored after every epoch (fixed: the first rows of validation)
    eval_batch_size: int = 8_192
    grad_clip: float = 10.0

    def __post_init__(self) -> None:
        if self.embedding_optimizer not in ("adam", "sparse_adam", "adagrad"):
            raise ConfigError("embedding_optimizer", self.embedding_optimizer, "allowed: adam, sparse_adam, adagrad")
        for name in ("batch_size", "max_epochs", "val_subsample", "eval_batch_size", "patience"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        if self.warmup_steps < 0 or not 0 <= self.ema_decay < 1:
            raise ConfigError("warmup_steps/ema_decay", (self.warmup_steps, self.ema_decay), "need >= 0 and [0, 1)")


def check_schema(config: ModelConfig, data: CTRData) -> None:
    if config.num_dense != data.num_dense:
        raise ConfigError("num_dense", config.num_dense, f"does not match the data's {data.num_dense} dense fields")
    if tuple(config.cardinalities) != tuple(data.cardinalities):
        raise ConfigError(
            "cardinalities",
            f"{len(config.cardinalities)} tables",
            f"do not match the data's {len(data.cardinalities)} tables of sizes {list(data.cardinalities)[:4]}...",
        )


@torch.no_grad()
def predict_logits(model: nn.Module, split: EncodedSplit, batch_size: int, rows: int | None = None) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    end = len(split) if rows is None else min(rows, len(split))
    out = [
        model(
            split.dense[i : min(i + batch_size, end)].to(device), split.sparse[i : min(i + batch_size, end)].to(device)
        )
        .float()
        .cpu()
        for i in range(0, end, batch_size)
    ]
    return torch.cat(out)


def validate(model: nn.Module, split: EncodedSplit, batch_size: int, rows: int | None = None) -> tuple[float, float]:
    logits = predict_logits(model, split, batch_size, rows)
    labels = split.labels[: len(logits)]
    return logloss(labels, logits), roc_auc(labels.numpy(), logits.numpy())


def embedding_learning_rate(settings: TrainSettings, lr: float, optimizer: EmbeddingOptimizer) -> float:
    """The tables' rate: ``settings.embedding_learning_rate``, else the dense rate ``lr`` for Adam
    and 10x it for Adagrad (whose steps shrink with the accumulated squared gradient)."""
    return settings.embedding_learning_rate or (10 * lr if optimizer == "adagrad" else lr)


class _Optimisers:
    """Dense weights: AdamW. Embedding tables: their own optimiser with sparse gradients, so a
    step touches only the rows a batch looked up (and Adam's moments of untouched rows do not
    keep moving them)."""

    def __init__(self, model: nn.Module, settings: TrainSettings, lr: float) -> None:
        tables = list(model.embedding_parameters())
        table_ids = {id(p) for p in tables}
        dense = [p for p in model.parameters() if id(p) not in table_ids]
        sparse = settings.embedding_optimizer != "adam"
        for module in model.modules():
            if isinstance(module, nn.Embedding):
                module.sparse = sparse
        self.dense_parameters = dense
        self.dense = torch.optim.AdamW(dense, lr=lr, weight_decay=settings.weight_decay) if dense else None
        embedding_lr = embedding_learning_rate(settings, lr, settings.embedding_optimizer)
        if settings.embedding_optimizer == "sparse_adam":
            self.embedding = torch.optim.SparseAdam(tables, lr=embedding_lr)
        elif settings.embedding_optimizer == "adagrad":
            self.embedding = torch.optim.Adagrad(tables, lr=embedding_lr)
        else:
            self.embedding = torch.optim.Adam(tables, lr=embedding_lr)
        self.base = [(group, group["lr"]) for opt in self.all for group in opt.param_groups]

    @property
    def all(self) -> list[torch.optim.Optimizer]:
        return [o for o in (self.dense, self.embedding) if o is not None]

    def scale(self, factor: float) -> None:
        for group, base in self.base:
            group["lr"] = base * factor

    def clip(self, max_norm: float) -> None:
        # Dense weights only: a sparse gradient has no norm kernel, and a table's rows are
        # bounded by their L2 penalty instead.
        if self.dense_parameters:
            torch.nn.utils.clip_grad_norm_(self.dense_parameters, max_norm)

    def zero_grad(self) -> None:
        for optimizer in self.all:
            optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        for optimizer in self.all:
            optimizer.step()


def evaluate(
    config: ModelConfig,
    data: CTRData,
    fidelity: int,
    seed: int = 0,
    settings: TrainSettings = TrainSettings(),
    reporter: Reporter | None = None,
    on_step: Callable[[int], None] | None = None,
    device: str = "cpu",
    score_test: bool = False,
) -> TrainResult:
    """Train ``config`` on the first ``fidelity`` rows of ``data.train`` (all of them when there
    are fewer) to early stopping, and score the best epoch on ``data.val``.
    ``on_step(samples_seen)`` follows progress; ``reporter`` sees every epoch's checkpoint.
    ``score_test`` also scores the reported weights on ``data.test``: rows that neither trained the
    model nor chose its epoch (a search must never choose on them, so it is off by default)."""
    check_schema(config, data)
    if fidelity < 1:
        raise ConfigError("fidelity", fidelity, "must be >= 1 training sample")
    start = time.perf_counter()
    rows = min(fidelity, len(data.train))
    lr = settings.learning_rate if settings.learning_rate is not None else learning_rate_for(config)
    batch = settings.batch_size if settings.batch_size is not None else batch_size_for(rows)
    progress = Progress(rows=rows, lr=lr, batch_size=batch)
    try:
        torch.manual_seed(seed)
        engine = _LocalEngine(build_model(config).to(device), data, settings, lr, device)
        return run_epochs(engine, config, progress, seed, settings, reporter, on_step, start, score_test)
    except (RuntimeError, MemoryError, ValueError, IndexError) as err:
        # A trial's failure (out of memory, a kernel error) is a result, not a crash of the search.
        detail = traceback.format_exception_only(type(err), err)[-1].strip().splitlines()[0][:500]
        return progress.failed(detail, start)


class _LocalEngine:
    """One process: the project's model with its own tables, on ``device``."""

    def __init__(self, model: CTRModel, data: CTRData, settings: TrainSettings, lr: float, device: str) -> None:
        self.model = model
        self.data = data
        self.settings = settings
        self.device = device
        self.optimisers = _Optimisers(model, settings, lr)

    def train_mode(self) -> None:
        self.model.train()

    def scale_learning_rates(self, factor: float) -> None:
        self.optimisers.scale(factor)

    def train_step(self, index: torch.Tensor) -> bool:
        train, device, settings = self.data.train, self.device, self.settings
        dense, sparse = train.dense[index].to(device), train.sparse[index].to(device)
        logits = self.model(dense, sparse)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, train.labels[index].to(device))
        if not torch.isfinite(loss):
            return False
        if settings.embedding_l2 > 0:
            loss = loss + settings.embedding_l2 * self.model.embedding_penalty(sparse)
        self.optimisers.zero_grad()
        loss.backward()
        self.optimisers.clip(settings.grad_clip)
        self.optimisers.step()
        return True

    def validate(self, rows: int | None) -> tuple[float, float]:
        return validate(self.model, self.data.val, self.settings.eval_batch_size, rows)

    def score_test(self) -> SplitScore | None:
        test = self.data.test
        if not len(test):
            return None
        return score_logits(test.labels, predict_logits(self.model, test, self.settings.eval_batch_size))

    def weights(self) -> list[torch.Tensor]:
        return list(self.model.parameters())

    def snapshot(self) -> dict[str, torch.Tensor]:
        return copy.deepcopy(self.model.state_dict())

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
