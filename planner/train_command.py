"""`unimixer-plan train`: train one config with the reference trainer, and check a plan's prediction.

``--engine torchrec --nproc N`` trains the same way under TorchRec's DistributedModelParallel
(``training.torchrec_launch``): same protocol, same printed metrics, plus the sharding plan.

A chosen.yaml written by a plan records the setting its numbers are for (``setting``: the data
spec, the distinct training samples, the seed and the trainer's settings) and, on a proxy ladder,
the predicted logloss with its 90 % interval. Trained with no data or trainer option, such a file
reproduces exactly that setting, and the result is printed next to the prediction: a prediction a
user can check. Any such option trains what was asked instead, and the comparison is not made
(the prediction is for the plan's setting only). The cache options change where the encoded data
lives, not what it is, so they never count as such an option.

Every run also scores the test split (``evaluate(..., score_test=True)``): rows that neither trained
the model nor chose its epoch, reported with standard errors.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import typer
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.errors import PlanError
from unimixer_plan.mixers import ModelConfig, load_config, load_document
from unimixer_plan.progress import progress_bar
from unimixer_plan.stdout_guard import stdout_to_stderr
from unimixer_plan.training.trainer import Checkpoint, TrainResult, TrainSettings, evaluate

DEFAULT_SYNTHETIC_SAMPLES = 100_000
DEFAULT_MIN_COUNT = 10
ENGINES = ("project", "torchrec")
RUN_OPTIONS = ("dataset", "engine", "nproc", "device_memory_gb")


@dataclass(frozen=True)
class TrainRequest:
    """What the command line asked for; None = not given."""

    dataset: str = "criteo"
    data: Path | None = None
    schema: Path | None = None
    samples: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    max_epochs: int | None = None
    min_count: int | None = None
    hash_buckets: int | None = None
    max_rows: int | None = None
    seed: int | None = None
    format: str | None = None
    positive_label: str | None = None
    valid: Path | None = None
    test: Path | None = None
    val_fraction: float | None = None
    test_fraction: float | None = None
    # How to run, not what to train (a plan's recorded setting is still reproduced):
    engine: str = "project"
    nproc: int | None = None
    device_memory_gb: float | None = None

    def overrides_a_setting(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self) if f.name not in RUN_OPTIONS)

    def check(self) -> None:
        for name in ("samples", "batch_size", "max_epochs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise PlanError(f"--{name.replace('_', '-')} {value}: must be >= 1")
        if self.learning_rate is not None and not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise PlanError(f"--learning-rate {self.learning_rate}: must be a finite number > 0")
        if self.engine not in ENGINES:
            raise PlanError(f"--engine {self.engine!r}: allowed: {', '.join(ENGINES)}")
        if self.engine != "torchrec":
            for name in ("nproc", "device_memory_gb"):
                if getattr(self, name) is not None:
                    raise PlanError(f"--{name.replace('_', '-')} {getattr(self, name)}: only with --engine torchrec")
        if self.nproc is not None and self.nproc < 1:
            raise PlanError(f"--nproc {self.nproc}: must be >= 1 (processes to start)")
        memory = self.device_memory_gb
        if memory is not None and not (memory > 0 and math.isfinite(memory)):
            raise PlanError(f"--device-memory-gb {memory}: must be a finite number > 0")


@dataclass(frozen=True)
class CacheChoice:
    """--no-cache and --cache-dir: applied to any spec, the plan's recorded one included."""

    enabled: bool = True
    folder: str | None = None


@dataclass(frozen=True)
class PlanSetting:
    """The setting a plan's numbers are for, as chosen.yaml records it (``run.records.plan_setting``)."""

    data: DataSpec
    train_samples: int
    seed: int
    trainer: TrainSettings
    predicted: dict[str, Any] | None  # {"val_logloss", "val_logloss_interval_90", ...} on a ladder

    @classmethod
    def from_document(cls, document: Any, path: Path) -> PlanSetting | None:
        setting = document.get("setting") if isinstance(document, dict) else None
        if setting is None:
            return None
        try:
            return cls(
                data=DataSpec.from_record(setting["data"], str(path)),
                train_samples=int(setting["train_samples"]),
                seed=int(setting["seed"]),
                trainer=TrainSettings(**setting["trainer"]),
                predicted=(document.get("metrics") or {}).get("predicted"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise PlanError(f"{path}: corrupt setting ({type(err).__name__}: {err})") from None


def run_train(config_path: Path, request: TrainRequest, as_json: bool, cache: CacheChoice = CacheChoice()) -> None:
    request.check()
    if request.engine == "torchrec":
        from unimixer_plan.mixers.torchrec_model import require_torchrec

        require_torchrec("--engine torchrec")  # before seconds of data loading
    model_config = load_config(config_path)
    setting = PlanSetting.from_document(load_document(config_path), config_path)
    if setting is not None and request.overrides_a_setting():
        typer.echo("note: options given, so the plan's recorded setting is not reproduced", err=True)
        setting = None
    if setting is not None:
        spec, samples, seed, settings = setting.data, setting.train_samples, setting.seed, setting.trainer
    else:
        seed = request.seed if request.seed is not None else 0
        spec = DataSpec(
            dataset=request.dataset,
            path=str(request.data) if request.data else None,
            schema_path=str(request.schema) if request.schema else None,
            min_count=request.min_count if request.min_count is not None else DEFAULT_MIN_COUNT,
            hash_buckets=request.hash_buckets,
            max_rows=request.max_rows,
            seed=seed,
            format=request.format,
            positive_label=request.positive_label,
            valid_path=str(request.valid) if request.valid else None,
            test_path=str(request.test) if request.test else None,
            **{
                name: getattr(request, name)
                for name in ("val_fraction", "test_fraction")
                if getattr(request, name) is not None
            },
        )
        samples = request.samples
        chosen = {"batch_size": request.batch_size, "learning_rate": request.learning_rate}
        chosen["max_epochs"] = request.max_epochs
        settings = TrainSettings(**{k: v for k, v in chosen.items() if v is not None})
    spec = replace(spec, cache=cache.enabled, cache_dir=cache.folder or spec.cache_dir)
    loaded = load_data(spec, train_rows=samples or DEFAULT_SYNTHETIC_SAMPLES)
    fidelity = samples or (DEFAULT_SYNTHETIC_SAMPLES if loaded.synthetic else len(loaded.train))
    if (model_config.num_dense, model_config.cardinalities) != (loaded.num_dense, loaded.cardinalities):
        # The config's schema describes the data it was sized for; embedding tables follow this data.
        model_config = model_config.replace(**loaded.schema)
        typer.echo("note: embedding tables resized to the data's schema", err=True)
    typer.echo(f"data: {loaded.description}", err=True)
    rows = min(fidelity, len(loaded.train))
    extra: dict[str, Any] = {}
    if request.engine == "torchrec":
        from unimixer_plan.training.torchrec_launch import launch, run_summary
        from unimixer_plan.training.torchrec_trainer import TorchRecJob

        job = TorchRecJob(model_config, fidelity, seed, settings, request.device_memory_gb)
        with stdout_to_stderr(as_json):
            outcome = launch(job, loaded, request.nproc, print_epoch)
        if outcome is None:  # a rank other than 0 of a launcher's job: rank 0 reports
            return
        result, extra = outcome.result, outcome.document()
        if not as_json:
            typer.echo(run_summary(outcome))
    else:
        bar = progress_bar(f"training {model_config.family}", rows * settings.max_epochs)
        with stdout_to_stderr(as_json), bar as update:
            result = evaluate(
                model_config, loaded, fidelity, seed=seed, settings=settings, on_step=update, score_test=True
            )
    test = result.test
    predicted = setting.predicted if setting is not None else None
    if as_json:
        typer.echo(json.dumps(result_document(result, loaded.description, model_config, predicted) | extra))
    elif result.ok:
        typer.echo(
            f"{model_config.family}: val AUC {result.val_auc:.4f}, val logloss {result.val_logloss:.4f} "
            f"(best epoch {result.best_epoch} of {result.epochs}; {result.stop_reason}; "
            f"{result.distinct_samples:,} distinct samples, batch {result.batch_size}, lr {result.learning_rate:.3g}, "
            f"{result.wall_time_s:.1f} s)"
        )
        if test is not None:
            typer.echo(
                f"{model_config.family}: test AUC {test.auc:.4f} ± {test.auc_se:.4f}, test logloss "
                f"{test.logloss:.4f} ± {test.logloss_se:.4f} ({test.rows:,} rows that neither trained nor chose "
                "the model; ± one standard error)"
            )
        if predicted:
            low, high = predicted["val_logloss_interval_90"]
            verdict = "inside" if low <= result.val_logloss <= high else "OUTSIDE"
            typer.echo(
                f"the plan predicted val logloss {predicted['val_logloss']:.4f}, 90% interval [{low:.4f}, {high:.4f}]: "
                f"measured {result.val_logloss:.4f} is {verdict} it "
                f"({(result.val_logloss - predicted['val_logloss']) / predicted['val_logloss']:+.2%})"
            )
        if loaded.noise_floor_logloss is not None:
            typer.echo(
                f"(synthetic data: the planted model's own logloss, the floor, is {loaded.noise_floor_logloss:.4f}"
                f" on validation, {loaded.test_noise_floor_logloss:.4f} on test)"
            )
    if not result.ok:
        typer.echo(f"Training failed: {result.error}", err=True)
        raise typer.Exit(1)


def print_epoch(checkpoint: Checkpoint) -> None:
    """--engine torchrec's progress, on rank 0 (a spawned rank writes to this command's stderr)."""
    typer.echo(
        f"epoch {checkpoint.epoch}: val logloss {checkpoint.val_logloss:.4f}, AUC {checkpoint.val_auc:.4f} "
        "(validation subsample)",
        err=True,
    )


def result_document(
    result: TrainResult,
    description: str,
    config: ModelConfig,
    predicted: dict[str, Any] | None,
) -> dict[str, Any]:
    document = {**result.to_dict(), "data": description, "config": config.to_dict()}
    if predicted:
        document["predicted_val_logloss"] = predicted["val_logloss"]
        document["predicted_interval"] = list(predicted["val_logloss_interval_90"])
    return document
