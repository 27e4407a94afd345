"""The training protocol itself, whatever runs the steps: one process (``trainer.evaluate``) or
TorchRec under DistributedModelParallel (``training.torchrec_trainer``).

:func:`run_epochs` owns every decision of the protocol (module docstring of ``trainer``): the
seeded shuffle per epoch, the warm-up and decay of the learning rate, the temperature anneal, the
weight average swapped in for validation, early stopping on the validation subsample, the best
epoch restored and scored on the whole split. An engine (:class:`TrainEngine`) only does what
differs between the two: one optimiser step on a batch of row indices, scoring rows, and reading
and writing its weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import torch
from unimixer_plan.mixers import ModelConfig
from unimixer_plan.mixers.sinkhorn import linear_temperature
from unimixer_plan.training.metrics import SplitScore

if TYPE_CHECKING:
    from unimixer_plan.training.trainer import TrainSettings


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


class TrainEngine(Protocol):
    """What runs the steps. ``model`` is the project's model (its ``set_temperature`` and
    ``uses_temperature``); ``weights()`` the floating-point tensors the weight average follows."""

    model: Any

    def train_mode(self) -> None:
        """Put the model in training mode (validation leaves it in eval mode)."""
        ...

    def scale_learning_rates(self, factor: float) -> None: ...

    def train_step(self, index: torch.Tensor) -> bool:
        """One optimiser step on the training rows ``index`` (the global batch); False when the
        loss was not finite (nothing is updated then)."""
        ...

    def validate(self, rows: int | None) -> tuple[float, float]:
        """(logloss, AUC) on the first ``rows`` validation rows (None: all of them)."""
        ...

    def score_test(self) -> SplitScore | None:
        """The current weights on the test split (None when the data has none)."""
        ...

    def weights(self) -> list[torch.Tensor]: ...

    def snapshot(self) -> Any: ...

    def restore(self, state: Any) -> None: ...


def run_epochs(
    engine: TrainEngine,
    config: ModelConfig,
    progress: Progress,
    seed: int,
    settings: TrainSettings,
    reporter: Reporter | None = None,
    on_step: Callable[[int], None] | None = None,
    start: float | None = None,
    score_test: bool = False,
) -> TrainResult:
    """Train on training rows ``0..progress.rows-1`` at base rate ``progress.lr`` in batches of
    ``progress.batch_size`` to early stopping and score the best epoch (and, with ``score_test``,
    the test split). ``progress`` is the caller's, so that a run that raises can still report how
    far it got; ``start``: the ``time.perf_counter()`` the wall time counts from."""
    start = time.perf_counter() if start is None else start
    rows, lr, batch = progress.rows, progress.lr, progress.batch_size
    order_generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(rows / batch)
    warmup = max(1, min(settings.warmup_steps, steps_per_epoch))  # 0 means no warm-up
    anneal_steps = max(1, round(settings.anneal_epochs * steps_per_epoch))
    epoch_factor = 1.0
    best_state: Any = None
    average = WeightAverage(engine.weights(), settings.ema_decay) if settings.ema_decay > 0 else None
    model = engine.model
    for epoch in range(1, settings.max_epochs + 1):
        engine.train_mode()
        order = torch.randperm(rows, generator=order_generator)
        for position in range(0, rows, batch):
            step = progress.steps
            if model.uses_temperature:
                model.set_temperature(linear_temperature(step, anneal_steps, config.tau_start, config.tau_end))
            engine.scale_learning_rates(epoch_factor * min(1.0, (step + 1) / warmup))
            index = order[position : position + batch]
            if not engine.train_step(index):
                return progress.failed(f"non-finite training loss at step {step}", start)
            if average is not None:
                average.update()
            progress.steps += 1
            progress.samples_seen += len(index)
            if on_step is not None:
                on_step(progress.samples_seen)
        if average is not None:
            average.swap()  # score (and keep) the averaged weights
        if model.uses_temperature:
            # scored at the temperature the next step would train at: tau_end from the anneal's end on,
            # the temperature the restored weights are scored and reported at, so that the epoch chosen
            # as best is chosen for the function that is reported (epoch 1 was scored one step early)
            model.set_temperature(linear_temperature(progress.steps, anneal_steps, config.tau_start, config.tau_end))
        val_logloss, val_auc = engine.validate(settings.val_subsample)
        if not math.isfinite(val_logloss):
            return progress.failed(f"non-finite validation logloss after epoch {epoch}", start)
        checkpoint = Checkpoint(epoch, progress.samples_seen, val_logloss, val_auc, epoch_factor * lr)
        progress.history.append(checkpoint)
        improved = val_logloss < progress.best_logloss - settings.min_delta
        if improved:
            progress.best_logloss, progress.best_epoch, progress.stale = val_logloss, epoch, 0
            best_state = engine.snapshot()
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
        engine.restore(best_state)
    val_logloss, val_auc = engine.validate(None)
    if not math.isfinite(val_logloss):
        return progress.failed("non-finite validation logloss", start)
    test = engine.score_test() if score_test else None
    return replace(progress.result("ok", val_logloss, val_auc, start), test=test)


class WeightAverage:
    """An exponential moving average of floating-point weights (Polyak averaging), swapped in for
    validation: on small data it smooths the noise of the last steps. ``weights`` are updated in
    place by training (parameters, or views of a TorchRec table's local shard)."""

    def __init__(self, weights: list[torch.Tensor], decay: float) -> None:
        self.decay = decay
        self.weights = weights
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
class Progress:
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
