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
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn
from unimixer_plan.data import CTRData, EncodedSplit
from unimixer_plan.mixers import ConfigError, ModelConfig, build_model
from unimixer_plan.mixers.sinkhorn import linear_temperature
from unimixer_plan.training.batch_size import batch_size_for
from unimixer_plan.training.learning_rate import learning_rate_for
from unimixer_plan.training.metrics import SplitScore, logloss, roc_auc, score_logits

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


@dataclass(frozen=True)
class Checkpoint:
    """The state after one epoch: validation scored on the fixed subsample."""

    epoch: int
    samples_seen: int
    val_logloss: float
    val_auc: float
    learning_rate: float


@dataclass(frozen=True)
class TrainResult:
    status: str  # "ok" (converged or epoch cap), "stopped" (by a scheduler), "failed"
    val_logloss: float  # best epoch's weights, whole validation split (subsample if stopped)
    val_auc: float
    distinct_samples: int  # training rows the trial may see
    samples_seen: int  # training samples processed (epochs x rows)
    epochs: int  # epochs run
    best_epoch: int  # the epoch whose weights are reported (0: none finished)
    stop_reason: str
    learning_rate: float
    wall_time_s: float
    batch_size: int = 0  # the training batch used (0: written before it was recorded)
    error: str | None = None
    history: tuple[Checkpoint, ...] = field(default_factory=tuple)
    test: SplitScore | None = None  # the reported weights on the test split, when asked for

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["history"] = [asdict(c) for c in self.history]
        data.pop("test")
        return data | (self.test.to_dict("test_") if self.test else {})

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# Called after every epoch with its checkpoint; returning True stops the trial (a scheduler).
Reporter = Callable[[Checkpoint], bool | None]


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
        embedding_lr = settings.embedding_learning_rate or (
            10 * lr if settings.embedding_optimizer == "adagrad" else lr
        )
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
    progress = _Progress(rows=rows, lr=lr, batch_size=batch)
    try:
        torch.manual_seed(seed)
        model = build_model(config).to(device)
        optimisers = _Optimisers(model, settings, lr)
        order_generator = torch.Generator().manual_seed(seed)
        steps_per_epoch = math.ceil(rows / batch)
        warmup = max(1, min(settings.warmup_steps, steps_per_epoch))  # 0 means no warm-up
        anneal_steps = max(1, round(settings.anneal_epochs * steps_per_epoch))
        epoch_factor = 1.0
        best_state: dict[str, torch.Tensor] | None = None
        average = _WeightAverage(model, settings.ema_decay) if settings.ema_decay > 0 else None
        train = data.train
        for epoch in range(1, settings.max_epochs + 1):
            model.train()
            order = torch.randperm(rows, generator=order_generator)
            for position in range(0, rows, batch):
                step = progress.steps
                if model.uses_temperature:
                    model.set_temperature(linear_temperature(step, anneal_steps, config.tau_start, config.tau_end))
                optimisers.scale(epoch_factor * min(1.0, (step + 1) / warmup))
                index = order[position : position + batch]
                dense, sparse = train.dense[index].to(device), train.sparse[index].to(device)
                logits = model(dense, sparse)
                loss = nn.functional.binary_cross_entropy_with_logits(logits, train.labels[index].to(device))
                if not torch.isfinite(loss):
                    return progress.failed(f"non-finite training loss at step {step}", start)
                if settings.embedding_l2 > 0:
                    loss = loss + settings.embedding_l2 * model.embedding_penalty(sparse)
                optimisers.zero_grad()
                loss.backward()
                optimisers.clip(settings.grad_clip)
                optimisers.step()
                if average is not None:
                    average.update()
                progress.steps += 1
                progress.samples_seen += len(index)
                if on_step is not None:
                    on_step(progress.samples_seen)
            if average is not None:
                average.swap()  # score (and keep) the averaged weights
            val_logloss, val_auc = validate(model, data.val, settings.eval_batch_size, settings.val_subsample)
            if not math.isfinite(val_logloss):
                return progress.failed(f"non-finite validation logloss after epoch {epoch}", start)
            checkpoint = Checkpoint(epoch, progress.samples_seen, val_logloss, val_auc, epoch_factor * lr)
            progress.history.append(checkpoint)
            improved = val_logloss < progress.best_logloss - settings.min_delta
            if improved:
                progress.best_logloss, progress.best_epoch, progress.stale = val_logloss, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            elif epoch > settings.anneal_epochs:  # the anneal itself may cost logloss; it is not a plateau
                progress.stale += 1
            if average is not None:
                average.swap()  # back to the raw weights to train on
            progress.epochs = epoch
            if reporter is not None and reporter(checkpoint):
                return progress.stopped(start)
            if progress.stale >= settings.patience:
                progress.stop_reason = f"early stop: no improvement in {settings.patience} epochs"
                break
            epoch_factor *= settings.lr_decay * (1.0 if improved else settings.plateau_decay)
        else:
            progress.stop_reason = f"epoch cap ({settings.max_epochs})"
        if best_state is not None:
            model.load_state_dict(best_state)
        val_logloss, val_auc = validate(model, data.val, settings.eval_batch_size)
        if not math.isfinite(val_logloss):
            return progress.failed("non-finite validation logloss", start)
        test = None
        if score_test and len(data.test):
            test = score_logits(data.test.labels, predict_logits(model, data.test, settings.eval_batch_size))
        return replace(progress.result("ok", val_logloss, val_auc, start), test=test)
    except (RuntimeError, MemoryError, ValueError, IndexError) as err:
        # A trial's failure (out of memory, a kernel error) is a result, not a crash of the search.
        detail = traceback.format_exception_only(type(err), err)[-1].strip().splitlines()[0][:500]
        return progress.failed(detail, start)


class _WeightAverage:
    """An exponential moving average of a model's floating-point weights (Polyak averaging),
    swapped in for validation: on small data it smooths the noise of the last steps."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.weights = [p for p in model.parameters()]
        self.average = [p.detach().clone() for p in self.weights]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self.average, [p.detach() for p in self.weights], 1.0 - self.decay)

    @torch.no_grad()
    def swap(self) -> None:
        for weight, average in zip(self.weights, self.average, strict=True):
            held = weight.detach().clone()
            weight.copy_(average)
            average.copy_(held)


@dataclass
class _Progress:
    """What a training run has done so far; turned into a TrainResult however it ends."""

    rows: int
    lr: float
    batch_size: int
    steps: int = 0
    samples_seen: int = 0
    epochs: int = 0
    best_epoch: int = 0
    best_logloss: float = math.inf
    stale: int = 0
    stop_reason: str = ""
    history: list[Checkpoint] = field(default_factory=list)

    def result(self, status: str, val_logloss: float, val_auc: float, start: float, error: str | None = None):
        return TrainResult(
            status=status,
            val_logloss=val_logloss,
            val_auc=val_auc,
            distinct_samples=self.rows,
            samples_seen=self.samples_seen,
            epochs=self.epochs,
            best_epoch=self.best_epoch,
            stop_reason=self.stop_reason,
            learning_rate=self.lr,
            wall_time_s=time.perf_counter() - start,
            batch_size=self.batch_size,
            error=error,
            history=tuple(self.history),
        )

    def stopped(self, start: float) -> TrainResult:
        self.stop_reason = f"stopped by the scheduler after epoch {self.epochs}"
        best = min(self.history, key=lambda c: c.val_logloss)
        return self.result("stopped", best.val_logloss, best.val_auc, start)

    def failed(self, reason: str, start: float) -> TrainResult:
        self.stop_reason = "failed"
        return self.result("failed", float("nan"), float("nan"), start, error=reason)
