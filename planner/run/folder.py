"""The run folder: every file a plan writes, and reading them back (resume, report, export).

plan.json     resolved inputs, versions, seed
trials.csv    one row per finished trial, appended as each finishes (nothing finished is lost)
pareto.csv    the non-dominated full-fidelity trials
chosen.yaml   the chosen config, loadable by unimixer_plan.mixers.load_config
summary.json  the chosen config's costs against each budget, and its quality
baselines.json  lr and fm trained by the same trainer on the same rows (the floor to beat)
optuna.db     the Optuna study (SQLite), for --resume
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unimixer_plan.errors import PlanError
from unimixer_plan.plan_config import PlanConfig

TRIAL_COLUMNS = (
    "trial_id",
    "rung",
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
    "wall_time_s",
    "stop_reason",
    "error",
)
KNOB_COLUMNS = ("n_tokens", "d_model", "heads", "rank", "bases", "depth", "ffn_ratio", "embed_dim")
# fidelity = distinct training rows; samples_seen = epochs x rows; best_epoch = the weights reported
INT_COLUMNS = (
    "trial_id",
    "rung",
    "optuna_trial",
    "fidelity",
    "samples_seen",
    "epochs",
    "best_epoch",
    "flops",
    "params_dense",
    *KNOB_COLUMNS,
)
FLOAT_COLUMNS = ("val_logloss", "val_auc", "latency_ms", "learning_rate", "wall_time_s")
# ok = trained to early stopping or the epoch cap (full fidelity); stopped = by successive halving
STATUSES = ("ok", "stopped", "failed", "infeasible")


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def plan_file(self) -> Path:
        return self.path / "plan.json"

    @property
    def trials_file(self) -> Path:
        return self.path / "trials.csv"

    @property
    def pareto_file(self) -> Path:
        return self.path / "pareto.csv"

    @property
    def chosen_file(self) -> Path:
        return self.path / "chosen.yaml"

    @property
    def summary_file(self) -> Path:
        return self.path / "summary.json"

    @property
    def scaling_file(self) -> Path:
        return self.path / "scaling.json"

    @property
    def optuna_file(self) -> Path:
        return self.path / "optuna.db"

    @property
    def optuna_url(self) -> str:
        return f"sqlite:///{self.optuna_file.resolve()}"

    @property
    def baselines_file(self) -> Path:
        return self.path / "baselines.json"

    def load_baselines(self) -> dict[str, Any] | None:
        """The lr/fm results of this plan (None until they are trained)."""
        try:
            return json.loads(self.baselines_file.read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise PlanError(f"{self.baselines_file}: corrupt baselines file") from None

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    def create(self, plan: PlanConfig, versions: dict[str, str]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(exist_ok=True)
        self.plan_file.write_text(json.dumps({"plan": plan.to_dict(), "versions": versions}, indent=2) + "\n")

    def load_plan(self) -> PlanConfig:
        if not self.path.is_dir():
            raise PlanError(f"--resume {self.path}: not a run folder (it does not exist)")
        try:
            return PlanConfig.from_dict(json.loads(self.plan_file.read_text())["plan"])
        except FileNotFoundError:
            raise PlanError(f"--resume {self.path}: not a run folder (no plan.json)") from None
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise PlanError(f"{self.plan_file}: corrupt plan file ({type(err).__name__}: {err})") from None

    def load_summary(self) -> dict[str, Any]:
        try:
            return json.loads(self.summary_file.read_text())
        except FileNotFoundError:
            raise PlanError(
                f"{self.path}: no summary.json; the plan has not finished (continue it with --resume)"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise PlanError(f"{self.summary_file}: corrupt summary file") from None

    def append_trial(self, row: dict[str, Any]) -> None:
        new = not self.trials_file.exists()
        with self.trials_file.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=TRIAL_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({k: _cell(row.get(k)) for k in TRIAL_COLUMNS})
            handle.flush()

    def load_trials(self) -> list[dict[str, Any]]:
        if not self.trials_file.exists():
            return []
        return read_trial_rows(self.trials_file)

    def write_rows(self, path: Path, rows: list[dict[str, Any]], extra_columns: tuple[str, ...] = ()) -> None:
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=(*TRIAL_COLUMNS, *extra_columns))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(row.get(k)) for k in (*TRIAL_COLUMNS, *extra_columns)})


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def read_trial_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not set(TRIAL_COLUMNS) <= set(reader.fieldnames):
                raise PlanError(f"{path}: corrupt trials table (missing columns)")
            for line, raw in enumerate(reader, start=2):
                try:
                    rows.append(_parse_row(raw))
                except (ValueError, TypeError) as err:
                    raise PlanError(f"{path}: line {line}: corrupt trial row ({err})") from None
    except UnicodeDecodeError:
        raise PlanError(f"{path}: corrupt trials table (not text)") from None
    return rows


def _parse_row(raw: dict[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = dict(raw)
    for column in INT_COLUMNS:
        row[column] = int(raw[column]) if raw[column] not in ("", None) else None
    for column in FLOAT_COLUMNS:
        row[column] = float(raw[column]) if raw[column] not in ("", None) else math.nan
    if row["status"] not in STATUSES:
        raise ValueError(f"status {row['status']!r} is not one of {STATUSES}")
    row["error"] = raw["error"] or None
    row["stop_reason"] = raw["stop_reason"] or None
    return row
