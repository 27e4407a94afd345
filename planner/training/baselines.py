"""The floor every family must clear: logistic regression and a factorization machine, trained
by the same trainer on the same rows as the candidates (DESIGN.md section 5.5).

On Criteo-like data a tuned LR is within a few AUC points of deep models, so a plan reports
each family's gain over both, and says so when its choice does not beat FM.

The baselines are tuned, not trained at the mixers' rate: each trains at every learning rate of
``BASELINE_LEARNING_RATES`` and keeps the best validation logloss. Measured 2026-11-29 on the
shared 10k Criteo sample, LR at the mixers' 1e-3 hits the epoch cap still learning (val AUC 0.718)
and reaches 0.735 at 1e-2; FM is best at 1e-3. Selecting on the validation rows the candidates
are scored on favours the baselines, which is the safe side for a claim that a model beats them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from unimixer_plan.data import CTRData
from unimixer_plan.mixers import analytic_cost, baseline_config
from unimixer_plan.training.trainer import TrainSettings, evaluate

BASELINES = ("lr", "fm")
BASELINE_EMBED_DIM = 16  # FM's factor size when the plan does not fix --embed-dim
# A mixer this many times FM's FLOPs that does not beat FM is not worth its cost.
FM_FLOPS_MULTIPLE = 100
BASELINE_LEARNING_RATES = (1e-3, 3e-3, 1e-2)


@dataclass(frozen=True)
class BaselineResult:
    family: str
    status: str
    val_logloss: float
    val_auc: float
    flops: int
    params_dense: int
    params_embedding: int
    epochs: int
    best_epoch: int
    model: dict[str, Any]
    learning_rate: float | None = None  # the best of the sweep (None: written before baselines were tuned)
    swept_logloss: dict[str, float] | None = None  # learning rate -> val logloss, every rate tried

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class BaselineGain:
    """How far a model is ahead of one baseline (positive = better)."""

    logloss: float  # the baseline's logloss minus the model's
    auc: float | None = None  # the model's AUC minus the baseline's; None when the model's is unknown (predicted)

    def to_dict(self) -> dict[str, float]:
        return {"logloss": self.logloss} | ({"auc": self.auc} if self.auc is not None else {})

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> BaselineGain:
        return cls(logloss=data["logloss"], auc=data.get("auc"))


def train_baselines(
    data: CTRData, fidelity: int, seed: int, settings: TrainSettings, embed_dim: int | None = None
) -> dict[str, BaselineResult]:
    """Train lr and fm on the first ``fidelity`` training rows with the candidates' trainer, each at
    the best of ``BASELINE_LEARNING_RATES`` (or only at ``settings.learning_rate`` when it is fixed)."""
    rates = (settings.learning_rate,) if settings.learning_rate is not None else BASELINE_LEARNING_RATES
    results = {}
    for family in BASELINES:
        config = baseline_config(family, data.num_dense, data.cardinalities, embed_dim or BASELINE_EMBED_DIM)
        runs = {
            rate: evaluate(config, data, fidelity, seed=seed, settings=replace(settings, learning_rate=rate))
            for rate in rates
        }
        best_rate = min(runs, key=lambda rate: _sortable(runs[rate].val_logloss))
        result = runs[best_rate]
        cost = analytic_cost(config)
        results[family] = BaselineResult(
            family=family,
            status=result.status,
            val_logloss=result.val_logloss,
            val_auc=result.val_auc,
            flops=cost.flops,
            params_dense=cost.params_dense,
            params_embedding=cost.params_embedding,
            epochs=result.epochs,
            best_epoch=result.best_epoch,
            model=config.to_dict(),
            learning_rate=best_rate,
            swept_logloss={f"{rate:g}": run.val_logloss for rate, run in runs.items()},
        )
    return results


def _sortable(logloss: float) -> float:
    return logloss if math.isfinite(logloss) else math.inf


def gains_over_baselines(
    val_logloss: float, val_auc: float | None, baselines: dict[str, BaselineResult]
) -> dict[str, BaselineGain]:
    """Logloss reduction (positive = better) and AUC gain over each baseline."""
    return {
        family: BaselineGain(
            logloss=base.val_logloss - val_logloss, auc=None if val_auc is None else val_auc - base.val_auc
        )
        for family, base in baselines.items()
    }


def fm_verdict(val_logloss: float, flops: float, baselines: dict[str, BaselineResult]) -> str | None:
    """A warning when a model FM_FLOPS_MULTIPLE x FM's cost (or more) does not beat FM."""
    fm = baselines.get("fm")
    if fm is None or fm.status != "ok":
        return None
    if flops >= FM_FLOPS_MULTIPLE * max(fm.flops, 1) and val_logloss >= fm.val_logloss:
        return (
            f"the chosen model costs {flops / max(fm.flops, 1):,.0f}x FM's FLOPs and does not beat FM "
            f"(val logloss {val_logloss:.4f} vs FM {fm.val_logloss:.4f}) on this data"
        )
    return None
