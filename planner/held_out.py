"""Train one config with the reference trainer and score it on the test split, which neither
trained it nor chose its epoch.

The trainer returns metrics, not the model. Its last forward pass is its final validation, on the
best epoch's weights, so the model that pass ran is the one to score: a global forward hook
(torch's ``register_module_forward_hook``) keeps the outermost module of the latest forward, and
the captured model must reproduce the reported validation logloss exactly before any test number
is given. When the trainer scores a test split itself, this module shrinks to that call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from unimixer_plan.data import CTRData
from unimixer_plan.mixers import ModelConfig
from unimixer_plan.training.metrics import auc_standard_error, logloss, logloss_standard_error, roc_auc
from unimixer_plan.training.trainer import TrainResult, TrainSettings, evaluate, predict_logits, validate


@dataclass(frozen=True)
class HeldOutScore:
    """The best epoch's weights on the test split; ± one standard error each."""

    rows: int
    logloss: float
    logloss_se: float  # sd of the per-row loss / sqrt(rows)
    auc: float
    auc_se: float  # DeLong

    def to_dict(self) -> dict[str, Any]:
        return {f"test_{k}": v for k, v in asdict(self).items()}


def score(model: nn.Module, data: CTRData, batch_size: int) -> HeldOutScore:
    logits = predict_logits(model, data.test, batch_size)
    labels = data.test.labels[: len(logits)]
    y, s = labels.numpy(), logits.numpy()
    return HeldOutScore(
        rows=len(labels),
        logloss=logloss(labels, logits),
        logloss_se=logloss_standard_error(y, s),
        auc=roc_auc(y, s),
        auc_se=auc_standard_error(y, s),
    )


def train_and_score(
    config: ModelConfig,
    data: CTRData,
    fidelity: int,
    seed: int,
    settings: TrainSettings,
    on_step: Callable[[int], None] | None = None,
) -> tuple[TrainResult, HeldOutScore | None]:
    """``evaluate`` as the trainer runs it, plus the test split's score (None when training failed)."""
    latest: list[nn.Module] = []

    def keep_outermost(module: nn.Module, args: Any, output: Any) -> None:
        # Hooks fire innermost first, so the last call of a forward pass is its outermost module.
        latest[:] = [module]

    handle = torch.nn.modules.module.register_module_forward_hook(keep_outermost)
    try:
        result = evaluate(config, data, fidelity, seed=seed, settings=settings, on_step=on_step)
    finally:
        handle.remove()
    if not result.ok or not latest:
        return result, None
    model = latest[0]
    check_logloss, _ = validate(model, data.val, settings.eval_batch_size)
    if not math.isclose(check_logloss, result.val_logloss, rel_tol=0, abs_tol=1e-9):
        raise RuntimeError(
            f"the captured model scores validation logloss {check_logloss} where the trainer reported "
            f"{result.val_logloss}: the trainer's last forward pass is no longer its final validation"
        )
    return result, score(model, data, settings.eval_batch_size)
