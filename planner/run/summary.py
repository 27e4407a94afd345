"""summary.json, typed: the plan's outcome (``PlanSummary``) and the configuration it chose (``Chosen``).

``to_dict`` writes exactly the keys, in the order, that summary.json has always had, so existing run
folders keep their format; ``from_dict`` reads them back for export and the report, and also reads a
summary written before a key existed (the key is then None, and ``to_dict`` writes it as null).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from unimixer_plan.mixers import ModelConfig
from unimixer_plan.mixers.embedding_tables import embedding_tables
from unimixer_plan.plan_config import Budget
from unimixer_plan.run.final_check import FinalCheck
from unimixer_plan.run.trial_record import TrialRecord, TrialStatus
from unimixer_plan.training.baselines import BaselineGain, BaselineResult


@dataclass(frozen=True)
class Certificate:
    """The chosen model's costs measured again outside the search: fvcore FLOPs (which must equal the
    analytic count) and latency on the budget's device. Only the first fields are known for a trial
    exported with its own recorded costs, or in a summary that predates the others."""

    flops_fvcore: int
    flops_analytic: int | None = None
    step_flops: int | None = None
    params_dense: int | None = None
    params_embedding: int | None = None
    latency_ms: float | None = None
    batch_size: int | None = None
    device: str | None = None
    train_flops_per_batch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Certificate:
        values = {f.name: data.get(f.name) for f in dataclasses.fields(cls)}
        return cls(**values | {"flops_fvcore": data["flops_fvcore"]})


@dataclass(frozen=True)
class HeldOut:
    """A family's law refitted without its top rung, predicting the top rung's diagonal point: the
    prediction's own extrapolation check (``scaling.prediction.held_out_check``). ``step`` is how far
    that check reaches (held-out point / largest point kept, in FLOPs and data), to be read next to the
    real step (the target's extrapolation); ``interval`` is the central 90 % interval of a measurement
    there, and ``misspecification_sd`` how far outside it the point fell (0 inside)."""

    compute: float
    samples: float
    actual: float
    predicted: float
    relative_error: float
    step: dict[str, float]
    interval: list[float]
    misspecification_sd: float = 0.0

    @property
    def covered(self) -> bool:
        """Whether the measured loss lies in the interval (the check passed)."""
        return self.interval[0] <= self.actual <= self.interval[1]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"passed": self.covered}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeldOut:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        return cls(**{**values, "interval": list(values["interval"])})


@dataclass(frozen=True)
class BaselineScore:
    """What the summary keeps of a baseline (the full result is in baselines.json)."""

    val_logloss: float
    val_auc: float
    flops: int
    status: str

    @classmethod
    def of(cls, result: BaselineResult) -> BaselineScore:
        return cls(val_logloss=result.val_logloss, val_auc=result.val_auc, flops=result.flops, status=result.status)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineScore:
        return cls(**data)


@dataclass(frozen=True, kw_only=True)
class Chosen:
    """The chosen configuration: a trial of a direct search (measured), or on a proxy ladder the
    scaled-up target of the winning family (``predicted``: its logloss comes from the scaling fit)."""

    trial_id: int | None  # None: a scaled-up target, never trained
    model: ModelConfig
    predicted: bool
    val_logloss: float
    val_auc: float | None  # None when predicted
    fidelity: int | None
    certificate: Certificate
    margins: dict[str, float]  # per budget set (flops, params, latency_ms): the share left unused
    epochs: int | None = None  # a trial's
    best_epoch: int | None = None
    val_logloss_interval: tuple[float, float] | None = None  # a target's 90 % posterior interval
    held_out: HeldOut | None = None
    fit: dict[str, float] | None = None  # the family's PowerLawFit, as in scaling.json
    proxy_points: list[dict[str, Any]] | None = None  # the best proxy per rung, as in scaling.json
    gain_over_baselines: dict[str, BaselineGain] | None = None  # None until the baselines are compared
    # a target's distance from its evidence: target / largest proxy, in FLOPs/sample and in distinct
    # training samples (the prediction is for the production data, ``fidelity``)
    extrapolation: dict[str, float] | None = None
    # a target's family's best proxy on the top rung (measured: what the baselines are compared with)
    top_proxy: dict[str, Any] | None = None
    # what the budget's last 4x of FLOPs buys at the production data (``scaling.ladder.compute_pays``)
    compute_pays: dict[str, Any] | None = None

    @classmethod
    def of_trial(
        cls, record: TrialRecord, model: ModelConfig, certificate: Certificate, margins: dict[str, float]
    ) -> Chosen:
        """A measured trial as the choice of a direct search (or, for ``export --trial``, as if chosen)."""
        return cls(
            trial_id=record.trial_id,
            model=model,
            predicted=False,
            val_logloss=record.val_logloss,
            val_auc=record.val_auc,
            fidelity=record.fidelity,
            epochs=record.epochs,
            best_epoch=record.best_epoch,
            certificate=certificate,
            margins=margins,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "trial_id": self.trial_id,
            "model": self.model.to_dict(),
            "predicted": self.predicted,
            "val_logloss": self.val_logloss,
        }
        if self.predicted:
            out |= {
                "val_logloss_interval": list(self.val_logloss_interval) if self.val_logloss_interval else None,
                "val_auc": self.val_auc,
                "fidelity": self.fidelity,
                "held_out": self.held_out.to_dict() if self.held_out else None,
                "fit": self.fit,
                "proxy_points": self.proxy_points,
                "extrapolation": self.extrapolation,
                "top_proxy": self.top_proxy,
                "compute_pays": self.compute_pays,
            }
        else:
            out |= {
                "val_auc": self.val_auc,
                "fidelity": self.fidelity,
                "epochs": self.epochs,
                "best_epoch": self.best_epoch,
            }
        out |= self.certificate.to_dict() | {"margins": self.margins}
        if self.gain_over_baselines is not None:
            out["gain_over_baselines"] = {name: gain.to_dict() for name, gain in self.gain_over_baselines.items()}
        # Derived from the model (rows, width, fp32 bytes per table), so from_dict need not read it back.
        out["embedding_tables"] = embedding_tables(self.model).to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chosen:
        interval = data.get("val_logloss_interval")
        held_out = data.get("held_out")
        gains = data.get("gain_over_baselines")
        return cls(
            trial_id=data["trial_id"],
            model=ModelConfig.from_dict(data["model"]),
            predicted=bool(data.get("predicted", False)),
            val_logloss=data["val_logloss"],
            val_auc=data.get("val_auc"),
            fidelity=data.get("fidelity"),
            certificate=Certificate.from_dict(data),
            margins=data.get("margins", {}),
            epochs=data.get("epochs"),
            best_epoch=data.get("best_epoch"),
            val_logloss_interval=(interval[0], interval[1]) if interval else None,
            held_out=HeldOut.from_dict(held_out) if held_out else None,
            fit=data.get("fit"),
            proxy_points=data.get("proxy_points"),
            extrapolation=data.get("extrapolation"),
            top_proxy=data.get("top_proxy"),
            compute_pays=data.get("compute_pays"),
            gain_over_baselines={n: BaselineGain.from_dict(g) for n, g in gains.items()} if gains is not None else None,
        )


@dataclass(frozen=True, kw_only=True)
class PlanSummary:
    """summary.json. The keys after ``chosen`` are None where that part of the plan did not happen:
    ``rungs``/``held_out``/``family_probabilities`` on a direct search or an interrupted ladder;
    ``baselines``, ``warnings`` and ``planned_trials`` until ``run_plan`` adds them (and in summaries
    written before they existed)."""

    run_dir: str
    mode: Literal["direct", "ladder"]
    data: str  # the data's description
    synthetic: bool
    trials: int
    trials_by_status: dict[str, int]
    pareto_size: int
    interrupted: bool
    budget: Budget
    chosen: Chosen | None
    rungs: list[dict[str, Any]] | None = None  # the ladder: [{"rung", "flops_budget"}], as in scaling.json
    held_out: dict[str, HeldOut] | None = None  # per family with a held-out check
    baselines: dict[str, BaselineScore] | None = None
    warnings: tuple[str, ...] | None = None
    planned_trials: int | None = None
    # per family with a prediction at its target: the probability that it has the lowest logloss there
    family_probabilities: dict[str, float] | None = None
    train_samples: int | None = None  # a ladder's: the production data its predictions are for
    # chosen and runner-up re-trained with fresh seeds, scored on the test split (nothing chose on it)
    final_check: FinalCheck | None = None

    @staticmethod
    def count_by_status(records: list[TrialRecord]) -> dict[str, int]:
        return {s.value: sum(r.status is s for r in records) for s in TrialStatus}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_dir": self.run_dir,
            "mode": self.mode,
            "data": self.data,
            "synthetic": self.synthetic,
            "trials": self.trials,
            "trials_by_status": self.trials_by_status,
            "pareto_size": self.pareto_size,
            "interrupted": self.interrupted,
            "budget": dataclasses.asdict(self.budget),
            "chosen": self.chosen.to_dict() if self.chosen else None,
        }
        if self.rungs is not None:
            out["rungs"] = self.rungs
        if self.held_out is not None:
            out["held_out"] = {family: h.to_dict() for family, h in self.held_out.items()}
        if self.baselines is not None:
            out["baselines"] = {name: b.to_dict() for name, b in self.baselines.items()}
        if self.warnings is not None:
            out["warnings"] = list(self.warnings)
        if self.planned_trials is not None:
            out["planned_trials"] = self.planned_trials
        if self.family_probabilities is not None:
            out["family_probabilities"] = self.family_probabilities
        if self.train_samples is not None:
            out["train_samples"] = self.train_samples
        if self.chosen is not None and self.chosen.extrapolation is not None:
            out["extrapolation"] = self.chosen.extrapolation  # also at the top: a prediction's first caveat
        if self.final_check is not None:
            out["test"] = self.final_check.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanSummary:
        """Raises KeyError, TypeError or ValueError on a corrupt summary (the caller names the file)."""
        held_out = data.get("held_out")
        baselines = data.get("baselines")
        warnings = data.get("warnings")
        return cls(
            run_dir=data["run_dir"],
            mode=data["mode"],
            data=data["data"],
            synthetic=data["synthetic"],
            trials=data["trials"],
            trials_by_status=data["trials_by_status"],
            pareto_size=data["pareto_size"],
            interrupted=data["interrupted"],
            budget=Budget(**data["budget"]),
            chosen=Chosen.from_dict(data["chosen"]) if data["chosen"] is not None else None,
            rungs=data.get("rungs"),
            held_out={f: HeldOut.from_dict(h) for f, h in held_out.items()} if held_out is not None else None,
            baselines={n: BaselineScore.from_dict(b) for n, b in baselines.items()} if baselines is not None else None,
            warnings=tuple(warnings) if warnings is not None else None,
            planned_trials=data.get("planned_trials"),
            family_probabilities=data.get("family_probabilities"),
            train_samples=data.get("train_samples"),
            final_check=FinalCheck.from_dict(data["test"]) if data.get("test") else None,
        )
