"""Train and evaluate one configuration for a fidelity (a number of training samples).

A failure inside training (a non-finite loss, an error while running) is a result with
status "failed", never an exception that would kill a search. Deterministic by seed on CPU.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from unimixer_plan.data import CTRData, EncodedSplit
from unimixer_plan.mixers import ConfigError, ModelConfig, RankingModel, build_model
from unimixer_plan.mixers.sinkhorn import linear_temperature
from unimixer_plan.training.metrics import logloss, roc_auc


@dataclass(frozen=True)
class TrainSettings:
    batch_size: int = 512
    learning_rate: float = 1e-3
    eval_batch_size: int = 8192
    anneal_fraction: float = 1.0  # tau goes tau_start -> tau_end linearly over this share of the steps
    grad_clip: float = 10.0


@dataclass(frozen=True)
class Checkpoint:
    samples: int
    val_logloss: float
    val_auc: float


@dataclass(frozen=True)
class TrainResult:
    status: str  # "ok" or "failed"
    val_logloss: float
    val_auc: float
    samples: int  # training samples seen
    steps: int
    wall_time_s: float
    error: str | None = None
    history: tuple[Checkpoint, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["history"] = [asdict(c) for c in self.history]
        return data


# Called at each evaluation point with (checkpoint); return True to stop early (e.g. ASHA).
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
def predict_logits(model: RankingModel, split: EncodedSplit, batch_size: int) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    out = [
        model(split.dense[i : i + batch_size].to(device), split.sparse[i : i + batch_size].to(device)).cpu()
        for i in range(0, len(split), batch_size)
    ]
    return torch.cat(out)


def validate(model: RankingModel, split: EncodedSplit, batch_size: int) -> tuple[float, float]:
    logits = predict_logits(model, split, batch_size)
    return logloss(split.labels, logits), roc_auc(split.labels.numpy(), logits.numpy())


def evaluate(
    config: ModelConfig,
    data: CTRData,
    fidelity: int,
    seed: int = 0,
    settings: TrainSettings = TrainSettings(),
    checkpoints: tuple[int, ...] = (),
    reporter: Reporter | None = None,
    on_step: Callable[[int], None] | None = None,
    device: str = "cpu",
) -> TrainResult:
    """Train ``config`` on ``fidelity`` samples of ``data.train`` (cycling over it in a
    seeded order when it is smaller), validating at each of ``checkpoints`` (sample
    counts) and at the end. ``on_step(samples_seen)`` follows progress."""
    check_schema(config, data)
    if fidelity < 1:
        raise ConfigError("fidelity", fidelity, "must be >= 1 training sample")
    start = time.perf_counter()
    steps = math.ceil(fidelity / settings.batch_size)
    samples = 0
    step = 0
    history: list[Checkpoint] = []
    try:
        torch.manual_seed(seed)
        model = build_model(config).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
        order_generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(data.train), generator=order_generator)
        position = 0
        # the last annealed step (index steps-1 when the fraction is 1) runs at exactly tau_end
        anneal_steps = max(1, round((steps - 1) * settings.anneal_fraction))
        pending = sorted(c for c in set(checkpoints) if 0 < c < fidelity)
        model.train()
        for step in range(steps):
            if model.uses_temperature:
                model.set_temperature(linear_temperature(step, anneal_steps, config.tau_start, config.tau_end))
            size = min(settings.batch_size, fidelity - samples)
            if position + size > len(order):
                order = torch.randperm(len(data.train), generator=order_generator)
                position = 0
            index = order[position : position + size]
            position += size
            logits = model(data.train.dense[index].to(device), data.train.sparse[index].to(device))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, data.train.labels[index].to(device))
            if not torch.isfinite(loss):
                return _failed(f"non-finite training loss at step {step}", samples, step, start, history)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            samples += size
            if on_step is not None:
                on_step(samples)
            while pending and samples >= pending[0]:
                pending.pop(0)
                checkpoint = _checkpoint(model, data, samples, settings)
                model.train()
                history.append(checkpoint)
                if reporter is not None and reporter(checkpoint):
                    return _finish(model, data, samples, step + 1, start, history, settings, final=checkpoint)
        return _finish(model, data, samples, steps, start, history, settings)
    except (RuntimeError, MemoryError, ValueError, IndexError) as err:
        # A trial's failure (out of memory, a kernel error) is a result, not a crash of the search.
        detail = traceback.format_exception_only(type(err), err)[-1].strip()
        return _failed(detail, samples, step, start, history)


def _checkpoint(model: RankingModel, data: CTRData, samples: int, settings: TrainSettings) -> Checkpoint:
    val_logloss, val_auc = validate(model, data.val, settings.eval_batch_size)
    return Checkpoint(samples=samples, val_logloss=val_logloss, val_auc=val_auc)


def _finish(
    model: RankingModel,
    data: CTRData,
    samples: int,
    steps: int,
    start: float,
    history: list[Checkpoint],
    settings: TrainSettings,
    final: Checkpoint | None = None,
) -> TrainResult:
    if final is None:
        final = _checkpoint(model, data, samples, settings)
        history.append(final)
    if not math.isfinite(final.val_logloss):
        return _failed("non-finite validation logloss", samples, steps, start, history)
    return TrainResult(
        status="ok",
        val_logloss=final.val_logloss,
        val_auc=final.val_auc,
        samples=samples,
        steps=steps,
        wall_time_s=time.perf_counter() - start,
        history=tuple(history),
    )


def _failed(reason: str, samples: int, steps: int, start: float, history: list[Checkpoint]) -> TrainResult:
    return TrainResult(
        status="failed",
        val_logloss=float("nan"),
        val_auc=float("nan"),
        samples=samples,
        steps=steps,
        wall_time_s=time.perf_counter() - start,
        error=reason,
        history=tuple(history),
    )
