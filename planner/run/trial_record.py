"""One finished trial, typed (Optuna's ``FrozenTrial``/``TrialState`` are the model).

This module is the only one that converts a trial to and from its outside forms: a Ray Tune result
(``TrialRecord.from_ray_result``), a trials.csv row and a pareto.csv row. Everything else reads
attributes, so a column renamed or a rule changed (what "stopped" means, what absent is) changes
here alone, and trials.csv keeps exactly its columns and cell format.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from unimixer_plan.mixers import ModelConfig

TRIAL_COLUMNS = (
    "trial_id",
    "rung",
    "role",
    "optuna_trial",
    "family",
    "n_tokens",
    "d_model",
    "heads",
    "rank",
    "bases",
    "depth",
    "ffn_ratio",
    "embed_dim",
    "fidelity",
    "seed",
    "samples_seen",
    "epochs",
    "best_epoch",
    "status",
    "val_logloss",
    "val_auc",
    "flops",
    "params_dense",
    "latency_ms",
    "learning_rate",
    "batch_size",
    "wall_time_s",
    "stop_reason",
    "error",
    "node",
    "started",
    "ended",
)
KNOB_COLUMNS = ("n_tokens", "d_model", "heads", "rank", "bases", "depth", "ffn_ratio", "embed_dim")
INT_COLUMNS = (
    "trial_id",
    "rung",
    "optuna_trial",
    "fidelity",
    "seed",
    "samples_seen",
    "epochs",
    "best_epoch",
    "flops",
    "params_dense",
    "batch_size",
    *KNOB_COLUMNS,
)
FLOAT_COLUMNS = ("val_logloss", "val_auc", "latency_ms", "learning_rate", "wall_time_s")
TEXT_COLUMNS = ("family", "stop_reason", "error", "node", "started", "ended")
# Columns added after run folders existed: a trials.csv without them still reads (and resumes).
LATER_COLUMNS = ("node", "started", "ended")
# pareto.csv on a proxy ladder: whether a row is a measured proxy or a scaled-up target, and which
# of its columns the scaling fit predicted rather than a trial measured.
LADDER_PARETO_COLUMNS = ("scale", "predicted")

STOPPED_REASON = "successive halving"
ERRORED_TEXT = "the trial raised an error (run with --verbose)"


class TrialStatus(StrEnum):
    """How a trial ended; only OK trials may enter the Pareto set or be chosen.

    OK:         trained to early stopping or the epoch cap on all its rows (full fidelity)
    STOPPED:    stopped by successive halving at an epoch milestone: its numbers are low-fidelity
    FAILED:     raised, diverged or never reported: no usable numbers
    INFEASIBLE: never trained: no width fits the knobs, or the measured latency breaks the budget
    """

    OK = "ok"
    STOPPED = "stopped"
    FAILED = "failed"
    INFEASIBLE = "infeasible"


STATUSES = tuple(s.value for s in TrialStatus)


class TrialRole(StrEnum):
    """Why a trial ran.

    SEARCH: proposed by the search of its rung (the only trials the Pareto set and the choice see)
    DATA:   a rung's best shape trained again on a fraction of the rung's rows (the scaling law's data axis)
    SEED:   a rung's best shape trained again with another seed on the same rows (the proxies' noise)
    """

    SEARCH = "search"
    DATA = "data"
    SEED = "seed"


ROLES = tuple(r.value for r in TrialRole)


def _int(value: Any) -> int | None:
    """A count from a Ray result, where absent may be None or NaN (an infeasible trial's costs)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


@dataclass(frozen=True, kw_only=True)
class TrialRecord:
    """One row of trials.csv. Absent numbers are None for counts and NaN for measurements, as
    trials.csv has always read back (an empty cell either way)."""

    trial_id: int  # unique across rungs and resumes
    rung: int  # 0 on a direct search; 1.. on a proxy ladder (a measurement: its source trial's rung)
    role: TrialRole = TrialRole.SEARCH
    optuna_trial: int | None = None
    family: str | None = None  # None: no model (no width fits the sampled knobs)
    n_tokens: int | None = None
    d_model: int | None = None
    heads: int | None = None
    rank: int | None = None
    bases: int | None = None
    depth: int | None = None
    ffn_ratio: int | None = None
    embed_dim: int | None = None
    fidelity: int | None = None  # distinct training rows
    seed: int | None = None  # the training seed
    samples_seen: int | None = None  # epochs x rows
    epochs: int | None = None
    best_epoch: int | None = None  # the epoch whose weights the metrics are of
    status: TrialStatus
    val_logloss: float = math.nan
    val_auc: float = math.nan
    flops: int | None = None
    params_dense: int | None = None
    latency_ms: float = math.nan
    learning_rate: float = math.nan
    batch_size: int | None = None  # training batch (the trainer's rule in the data size, unless fixed)
    wall_time_s: float = math.nan
    stop_reason: str | None = None
    error: str | None = None
    node: str | None = None  # where it ran: "IP/first 8 hex digits of the Ray node id" (`ray list nodes`)
    started: str | None = None  # UTC, ISO 8601 (utc_timestamp): when the search started the trial
    ended: str | None = None  # UTC: when it reported its end (both on the driver's clock)

    def __post_init__(self) -> None:
        # One NaN object for every absent measurement: records then compare equal field by field
        # (tuple equality checks identity before ==), and ints given for floats print as floats.
        for name in FLOAT_COLUMNS:
            value = getattr(self, name)
            number = math.nan if value is None or value != value else float(value)
            object.__setattr__(self, name, number)
        object.__setattr__(self, "status", TrialStatus(self.status))
        object.__setattr__(self, "role", TrialRole(self.role))

    @property
    def is_complete(self) -> bool:
        """Full fidelity with a measured logloss (a search trial: the only trials the Pareto set and the
        choice see; a measurement: usable by the scaling law)."""
        return self.status is TrialStatus.OK and math.isfinite(self.val_logloss)

    @property
    def is_search(self) -> bool:
        return self.role is TrialRole.SEARCH

    @property
    def knobs(self) -> dict[str, int | None]:
        return {k: getattr(self, k) for k in KNOB_COLUMNS}

    def model_config(self, schema: Mapping[str, Any]) -> ModelConfig:
        """The trained architecture on a data schema (num_dense, cardinalities)."""
        return ModelConfig(family=self.family, **self.knobs, **schema)

    def number(self, column: str) -> float:
        """A numeric column as a float, NaN when absent: objectives are named by column
        (``PlanConfig.objectives``)."""
        if column not in INT_COLUMNS and column not in FLOAT_COLUMNS:
            raise KeyError(f"{column!r} is not a numeric trials.csv column")
        value = getattr(self, column)
        return math.nan if value is None else float(value)

    def to_csv_row(self) -> dict[str, str]:
        """The trials.csv cells: empty for None and NaN, otherwise as ``csv`` writes the value."""
        return {column: _cell(getattr(self, column)) for column in TRIAL_COLUMNS}

    @classmethod
    def from_csv_row(cls, raw: Mapping[str, str | None]) -> TrialRecord:
        """Parse one trials.csv row; ValueError or TypeError names what is corrupt (the caller
        adds the file and line)."""
        values: dict[str, Any] = {}
        for column in INT_COLUMNS:
            values[column] = int(raw[column]) if raw[column] not in ("", None) else None
        for column in FLOAT_COLUMNS:
            values[column] = float(raw[column]) if raw[column] not in ("", None) else math.nan
        if raw["status"] not in STATUSES:
            raise ValueError(f"status {raw['status']!r} is not one of {STATUSES}")
        if raw["role"] not in ROLES:
            raise ValueError(f"role {raw['role']!r} is not one of {ROLES}")
        for column in TEXT_COLUMNS:
            values[column] = raw.get(column) or None  # a run folder from before LATER_COLUMNS lacks them
        if values["trial_id"] is None or values["rung"] is None:
            raise ValueError("trial_id and rung are required")
        return cls(**values, status=TrialStatus(raw["status"]), role=TrialRole(raw["role"]))

    @classmethod
    def from_ray_result(
        cls,
        trial_id: int,
        config: Mapping[str, Any],
        result: Mapping[str, Any] | None,
        errored: bool,
        raised: str | None = None,
    ) -> TrialRecord:
        """A Tune trial's record from its config and last result (``search.driver.run_trial``'s reports).

        The last report decides the status: an epoch's report ("running") means successive halving
        stopped the trial; an error, or no report at all, is a failure; an infeasible trial keeps no
        logloss (it reports the base rate to Optuna only, to teach the latency constraint). ``raised``: the
        exception an errored trial raised, as Ray recorded it.
        """
        result = result or {}
        model = config.get("model") or {}
        reported = result.get("status", "failed")
        if errored:
            status = TrialStatus.FAILED
        elif reported == "running":  # the last report was an epoch's: successive halving stopped it
            status = TrialStatus.STOPPED
        else:
            status = TrialStatus(reported)
        return cls(
            trial_id=trial_id,
            rung=config.get("rung", 0),
            role=TrialRole(config.get("role", TrialRole.SEARCH)),
            optuna_trial=config.get("trial_number"),
            family=model.get("family"),
            **{k: model.get(k) for k in KNOB_COLUMNS},
            fidelity=_int(result.get("distinct_samples")),
            seed=_int(config.get("seed")),
            samples_seen=_int(result.get("samples_seen")),
            epochs=_int(result.get("epoch")),
            best_epoch=_int(result.get("best_epoch")),
            status=status,
            val_logloss=result.get("val_logloss") if status is not TrialStatus.INFEASIBLE else math.nan,
            val_auc=result.get("val_auc"),
            flops=_int(result.get("flops")),
            params_dense=_int(result.get("params_dense")),
            latency_ms=result.get("latency_ms"),
            learning_rate=result.get("learning_rate"),
            batch_size=_int(result.get("batch_size")),
            wall_time_s=result.get("wall_time_s"),
            stop_reason=result.get("stop_reason") or (STOPPED_REASON if status is TrialStatus.STOPPED else None),
            error=result.get("error") or ((raised or ERRORED_TEXT) if errored else None),
            node=result.get("node"),
        )


def utc_timestamp() -> str:
    """Now in UTC, as trials.csv's ``started`` and ``ended`` record it: 2026-12-05T06:01:02.123+00:00."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class ScaledTarget:
    """A scaled-up configuration on a ladder's pareto.csv: never trained, its logloss predicted by
    its family's scaling fit, its costs those of the full-size model."""

    model: ModelConfig
    val_logloss: float
    flops: int
    params_dense: int
    latency_ms: float | None  # measured only under a latency budget

    def to_csv_row(self) -> dict[str, str]:
        cells = dict.fromkeys(TRIAL_COLUMNS, "")
        cells |= {"family": self.model.family, **{k: _cell(getattr(self.model, k)) for k in KNOB_COLUMNS}}
        cells |= {
            "status": TrialStatus.OK.value,
            "val_logloss": _cell(self.val_logloss),
            "flops": _cell(self.flops),
            "params_dense": _cell(self.params_dense),
            "latency_ms": _cell(self.latency_ms),
        }
        return cells | {"scale": "target", "predicted": "val_logloss"}


def pareto_table(
    front: list[TrialRecord], targets: list[ScaledTarget] | None
) -> tuple[tuple[str, ...], list[dict[str, str]]]:
    """pareto.csv's columns and rows: the front's trials; on a ladder (``targets`` given) marked
    as proxies, followed by the non-dominated scaled-up targets."""
    if targets is None:
        return TRIAL_COLUMNS, [r.to_csv_row() for r in front]
    proxies = [r.to_csv_row() | {"scale": "proxy", "predicted": ""} for r in front]
    return (*TRIAL_COLUMNS, *LADDER_PARETO_COLUMNS), proxies + [t.to_csv_row() for t in targets]
