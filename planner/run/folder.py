"""The run folder: every file a plan writes, and reading them back (resume, report, export).

plan.json     resolved inputs, versions, seed
trials.csv    one row per finished trial, appended as each finishes (nothing finished is lost)
curves.csv    every trial's learning curve: validation after each epoch (the fit can be redone from it)
pareto.csv    the non-dominated full-fidelity trials
chosen.yaml   the chosen config, loadable by unimixer_plan.mixers.load_config
summary.json  the chosen config's costs against each budget, and its quality
baselines.json  lr and fm trained by the same trainer on the same rows (the floor to beat)
final_check.json  the chosen configuration and the runner-up re-trained with fresh seeds and scored on
              the test split (also in summary.json's "test"); kept so that a resumed plan reuses it
optuna.db     the Optuna study (SQLite), for --resume
trial_rows.json  per study, the rows its trials received (a prefix of the training split, the validation
              split) and their digests; a resume on other rows is refused
cache/        each architecture trained to the end, by its key: a resumed run reuses it (written by the
              driver from the trial's report; trials on other nodes never touch this folder)
ray-temp-dir  while the plan's own local Ray runs: its session folder (a killed plan's is removed on --resume)
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
from pathlib import Path

from unimixer_plan.errors import PlanError
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.run.summary import PlanSummary
from unimixer_plan.run.trial_record import LATER_COLUMNS, TRIAL_COLUMNS, ScaledTarget, TrialRecord, pareto_table
from unimixer_plan.training.baselines import BaselineResult


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
    def curves_file(self) -> Path:
        return self.path / "curves.csv"

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

    def load_baselines(self) -> dict[str, BaselineResult] | None:
        """The lr/fm results of this plan (None until they are trained)."""
        try:
            results = json.loads(self.baselines_file.read_text())
            return {name: BaselineResult.from_dict(result) for name, result in results.items()}
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError):
            raise PlanError(f"{self.baselines_file}: corrupt baselines file") from None

    def write_baselines(self, results: dict[str, BaselineResult]) -> None:
        text = json.dumps({name: result.to_dict() for name, result in results.items()}, indent=2)
        self.baselines_file.write_text(text + "\n")

    @property
    def final_check_file(self) -> Path:
        return self.path / "final_check.json"

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    def cached_results(self) -> dict[str, dict]:
        """Results kept by ``save_cached_result``, by key (a torn or foreign file is skipped: retrained)."""
        results = {}
        for file in sorted(self.cache_dir.glob("*.json")):
            try:
                result = json.loads(file.read_text())
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(result, dict):
                results[file.stem] = result
        return results

    @property
    def trial_rows_file(self) -> Path:
        return self.path / "trial_rows.json"

    def record_trial_rows(self, study: str, record: dict) -> None:
        """Keep which rows ``study``'s trials receive (``CTRData.trial_rows_record``). The same number of
        rows with other contents means the data changed under a resumed plan: refused."""
        try:
            recorded = json.loads(self.trial_rows_file.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            recorded = {}
        before = recorded.get(study) if isinstance(recorded, dict) else None
        if isinstance(before, dict) and before.get("train_rows") == record["train_rows"] and before != record:
            raise PlanError(
                f"--resume {self.path}: the rows of study {study!r} differ from those recorded in "
                f"{self.trial_rows_file.name} (the data changed since the plan started); start a new plan"
            )
        recorded = (recorded if isinstance(recorded, dict) else {}) | {study: record}
        partial = self.path / f".{self.trial_rows_file.name}.partial"
        partial.write_text(json.dumps(recorded, indent=2) + "\n")
        partial.replace(self.trial_rows_file)

    def save_cached_result(self, key: str, result: dict) -> None:
        self.cache_dir.mkdir(exist_ok=True)
        partial = self.cache_dir / f".{key}.partial"
        partial.write_text(json.dumps(result))
        partial.replace(self.cache_dir / f"{key}.json")  # whole or absent, even if killed mid-write

    def create(self, plan: PlanConfig, versions: dict[str, str]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(exist_ok=True)
        self.plan_file.write_text(json.dumps({"plan": plan.to_dict(), "versions": versions}, indent=2) + "\n")

    def load_plan(self) -> PlanConfig:
        """The recorded plan, living in this folder: its ``out`` is this folder's path, wherever the plan
        was started (a moved or copied folder resumes where it is, never at its recorded path)."""
        if not self.path.is_dir():
            raise PlanError(f"--resume {self.path}: not a run folder (it does not exist)")
        try:
            plan = PlanConfig.from_dict(json.loads(self.plan_file.read_text())["plan"])
            return replace(plan, out=str(self.path))
        except FileNotFoundError:
            raise PlanError(f"--resume {self.path}: not a run folder (no plan.json)") from None
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise PlanError(f"{self.plan_file}: corrupt plan file ({type(err).__name__}: {err})") from None

    def load_summary(self) -> PlanSummary:
        try:
            return PlanSummary.from_dict(json.loads(self.summary_file.read_text()))
        except FileNotFoundError:
            raise PlanError(
                f"{self.path}: no summary.json; the plan has not finished (continue it with --resume)"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, PlanError) as err:
            raise PlanError(f"{self.summary_file}: corrupt summary file ({type(err).__name__}: {err})") from None

    def write_summary(self, summary: PlanSummary) -> None:
        self.summary_file.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")

    def append_trial(self, record: TrialRecord) -> None:
        new = not self.trials_file.exists()
        columns = TRIAL_COLUMNS if new else self._trial_header()
        with self.trials_file.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(record.to_csv_row())
            handle.flush()

    def _trial_header(self) -> tuple[str, ...]:
        """The columns of an existing trials.csv: a folder resumed by a newer planner keeps its own."""
        with self.trials_file.open(newline="") as handle:
            header = next(csv.reader(handle), None)
        return tuple(header) if header else TRIAL_COLUMNS

    def append_curve(self, trial_id: int, history: list[list[float]]) -> None:
        """A trial's checkpoints, [epoch, samples_seen, val_logloss, val_auc] each (the fixed validation
        subsample), as rows of curves.csv."""
        new = not self.curves_file.exists()
        with self.curves_file.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(CURVE_COLUMNS)
            writer.writerows([trial_id, *checkpoint] for checkpoint in history)
            handle.flush()

    def load_curves(self) -> dict[int, list[tuple[int, int, float, float]]]:
        """trial id -> its checkpoints (epoch, samples_seen, val_logloss, val_auc), in epoch order."""
        curves: dict[int, list[tuple[int, int, float, float]]] = {}
        if not self.curves_file.exists():
            return curves
        with self.curves_file.open(newline="") as handle:
            for line, raw in enumerate(csv.DictReader(handle), start=2):
                try:
                    point = (
                        int(raw["epoch"]),
                        int(raw["samples_seen"]),
                        float(raw["val_logloss"]),
                        float(raw["val_auc"]),
                    )
                    curves.setdefault(int(raw["trial_id"]), []).append(point)
                except (KeyError, TypeError, ValueError):
                    raise PlanError(f"{self.curves_file}: line {line}: corrupt curve row") from None
        return curves

    def load_trials(self) -> list[TrialRecord]:
        if not self.trials_file.exists():
            return []
        return read_trials(self.trials_file)

    def drop_torn_rows(self) -> None:
        """Cut the half-written last row a killed plan can leave (no line end) from trials.csv, whose
        trial a resumed plan then runs again, and from curves.csv (written after its trial's row, so
        that trial keeps the epochs before the cut)."""
        for table in (self.trials_file, self.curves_file):
            _cut_torn_tail(table)

    def write_pareto(self, front: list[TrialRecord], targets: list[ScaledTarget] | None = None) -> None:
        """pareto.csv: the front's trials, and on a proxy ladder (``targets`` given) the scaled-up targets."""
        columns, rows = pareto_table(front, targets)
        with self.pareto_file.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)


CURVE_COLUMNS = ("trial_id", "epoch", "samples_seen", "val_logloss", "val_auc")


def _cut_torn_tail(table: Path) -> None:
    """Truncate ``table`` after its last line end when the bytes after it are a row that never ended."""
    if not table.exists():
        return
    data = table.read_bytes()
    if data.endswith(b"\n"):
        return
    kept = data[: data.rfind(b"\n") + 1]
    if kept:
        table.write_bytes(kept)
    else:  # empty (killed before its first flush) or a torn header: the next append writes a whole one
        table.unlink()


def read_trials(path: Path) -> list[TrialRecord]:
    records = []
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not set(TRIAL_COLUMNS) - set(LATER_COLUMNS) <= set(reader.fieldnames):
                raise PlanError(f"{path}: corrupt trials table (missing columns)")
            for line, raw in enumerate(reader, start=2):
                try:
                    records.append(TrialRecord.from_csv_row(raw))
                except (ValueError, TypeError) as err:
                    raise PlanError(f"{path}: line {line}: corrupt trial row ({err})") from None
    except UnicodeDecodeError:
        raise PlanError(f"{path}: corrupt trials table (not text)") from None
    return records
