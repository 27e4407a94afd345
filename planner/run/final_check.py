"""summary.json's ``test`` part, typed: the chosen configuration and the runner-up scored on the test split.

Nothing here was used to choose: search, successive halving, the scaling fits and the choice read the
validation split only; these numbers come after the choice, from models re-trained with fresh seeds
and scored on rows that neither trained a model nor chose an epoch (``unimixer_plan.retrain_on_test``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RetrainedScore:
    """One configuration re-trained with ``len(seeds)`` seeds on ``fidelity`` rows, scored on the test split.

    ``logloss``/``auc`` are means over the seeds; their standard errors add the seeds' spread (sd/sqrt(n),
    the training's randomness) and the test rows' sampling error (the seeds' mean per-row SE, shared by
    all seeds since they score the same rows) in quadrature."""

    role: str  # "chosen" or "runner-up"
    trial_id: int  # the trial whose architecture and rows are re-trained
    family: str
    flops: int
    fidelity: int
    seeds: list[int]
    logloss: float
    logloss_se: float
    auc: float
    auc_se: float
    per_seed: list[dict[str, float]]  # {"seed", "logloss", "auc"}, the seeds that trained

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetrainedScore:
        return cls(**data)


@dataclass(frozen=True)
class PairedComparison:
    """Chosen minus runner-up on the same test rows, each row's loss averaged over the seeds, with a
    bootstrap over the rows: the interval is central 90 %, ``probability_chosen_better`` the share of
    draws where the chosen configuration's logloss is lower. AUC differences use the same draws."""

    logloss_difference: float
    logloss_interval: list[float]
    auc_difference: float
    auc_interval: list[float]
    probability_chosen_better: float
    draws: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairedComparison:
        return cls(**data)


@dataclass(frozen=True)
class FinalCheck:
    """What was re-trained and scored (``subject``: the chosen trial itself on a direct search, the best
    top-rung proxies of the chosen and the runner-up family on a ladder), on how many test rows."""

    subject: str
    rows: int
    chosen: RetrainedScore
    runner_up: RetrainedScore | None
    paired: PairedComparison | None
    failures: list[str] = dataclasses.field(default_factory=list)  # seeds that did not train, and why

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "rows": self.rows,
            "chosen": self.chosen.to_dict(),
            "runner_up": self.runner_up.to_dict() if self.runner_up else None,
            "paired": self.paired.to_dict() if self.paired else None,
            "failures": self.failures,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinalCheck:
        return cls(
            subject=data["subject"],
            rows=data["rows"],
            chosen=RetrainedScore.from_dict(data["chosen"]),
            runner_up=RetrainedScore.from_dict(data["runner_up"]) if data.get("runner_up") else None,
            paired=PairedComparison.from_dict(data["paired"]) if data.get("paired") else None,
            failures=list(data.get("failures", [])),
        )
