"""The ``unimixer-plan`` command line.

Library code raises :class:`mixers.PlanError`; this module is the only place that turns
it into one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from mixers import PlanError, get_family, list_mixers, load_config
from planner.data import DataSpec, load_data
from planner.formatting import format_count, format_flops
from planner.progress import progress_bar

DEFAULT_SYNTHETIC_SAMPLES = 100_000

app = typer.Typer(
    name="unimixer-plan",
    help="Size UniMixer ranking models for a serving budget.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except PlanError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(2) from None


ConfigPath = Annotated[Path, typer.Argument(help="Model config (YAML or JSON), e.g. examples/unimixing_lite.yaml.")]


@app.command()
def profile(
    config: ConfigPath,
    batch_size: Annotated[int, typer.Option(help="Batch size for latency and training FLOPs per batch.")] = 256,
    device: Annotated[str, typer.Option(help="Device for latency: cpu, cuda or cuda:N.")] = "cpu",
    latency: Annotated[bool, typer.Option("--latency", help="Also measure forward latency (eval mode).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Count FLOPs (fvcore), parameters and optionally latency of one model config."""
    with user_errors():
        from planner.profiling import profile as run_profile  # heavy imports only when needed

        model_config = load_config(config)
        result = run_profile(model_config, batch_size=batch_size, device=device, latency=latency)
    if as_json:
        typer.echo(json.dumps({"config": model_config.to_dict(), **result.to_dict()}))
        return
    rows = [
        ("family", model_config.family),
        ("FLOPs / sample (fwd, fvcore x2)", format_flops(result.flops)),
        ("FLOPs / sample (analytic)", format_flops(result.flops_analytic)),
        ("FLOPs / step (matrix build)", format_flops(result.step_flops)),
        (f"training FLOPs / batch of {batch_size}", format_flops(result.train_flops_per_batch)),
        ("dense params", format_count(result.params_dense)),
        ("embedding params", f"{format_count(result.params_embedding)} ({result.embedding_bytes / 2**20:.1f} MiB)"),
    ]
    if result.latency_ms is not None:
        rows.append((f"latency @ batch {batch_size} on {result.device}", f"{result.latency_ms:.3f} ms"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        typer.echo(f"{name:<{width}}  {value}")


DatasetOption = Annotated[str, typer.Option(help="Dataset schema: criteo (or describe your own with --schema).")]
DataOption = Annotated[
    Path | None,
    typer.Option(help="Real data file (TSV/CSV, plain or gzip). Omit for the synthetic generator of the schema."),
]
SchemaOption = Annotated[Path | None, typer.Option(help="YAML schema of your own table (label, dense, categorical).")]
MinCountOption = Annotated[int, typer.Option(help="Categorical values rarer than this in training map to OOV.")]
HashOption = Annotated[int | None, typer.Option(help="Hash categorical values into this many ids instead.")]
MaxRowsOption = Annotated[int | None, typer.Option(help="Read at most this many rows of --data.")]
SeedOption = Annotated[int, typer.Option(help="Seed for data generation, initialisation and order.")]


def data_spec(
    dataset: str, data: Path | None, schema: Path | None, min_count: int, hash_buckets: int | None,
    max_rows: int | None, seed: int,
) -> DataSpec:  # fmt: skip
    return DataSpec(
        dataset=dataset,
        path=str(data) if data else None,
        schema_path=str(schema) if schema else None,
        min_count=min_count,
        hash_buckets=hash_buckets,
        max_rows=max_rows,
        seed=seed,
    )


@app.command()
def train(
    config: ConfigPath,
    dataset: DatasetOption = "criteo",
    data: DataOption = None,
    schema: SchemaOption = None,
    samples: Annotated[
        int | None, typer.Option(help="Training samples (default: 100,000 synthetic, or one epoch of --data).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = 512,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    min_count: MinCountOption = 10,
    hash_buckets: HashOption = None,
    max_rows: MaxRowsOption = None,
    seed: SeedOption = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a summary.")] = False,
) -> None:
    """Train one model config and print validation AUC and logloss (the reference trainer)."""
    with user_errors():
        from planner.training import TrainSettings, evaluate

        model_config = load_config(config)
        if samples is not None and samples < 1:
            raise PlanError(f"--samples {samples}: must be >= 1")
        if batch_size < 1:
            raise PlanError(f"--batch-size {batch_size}: must be >= 1")
        if not (learning_rate > 0 and math.isfinite(learning_rate)):
            raise PlanError(f"--learning-rate {learning_rate}: must be a finite number > 0")
        spec = data_spec(dataset, data, schema, min_count, hash_buckets, max_rows, seed)
        loaded = load_data(spec, train_rows=samples or DEFAULT_SYNTHETIC_SAMPLES)
        fidelity = samples or (DEFAULT_SYNTHETIC_SAMPLES if loaded.synthetic else len(loaded.train))
        if (model_config.num_dense, model_config.cardinalities) != (loaded.num_dense, loaded.cardinalities):
            # The config's schema describes the data it was sized for; embedding tables follow this data.
            model_config = model_config.replace(**loaded.schema)
            typer.echo("note: embedding tables resized to the data's schema", err=True)
        typer.echo(f"data: {loaded.description}", err=True)
        with progress_bar(f"training {model_config.family}", fidelity) as update:
            result = evaluate(model_config, loaded, fidelity, seed=seed,
                              settings=TrainSettings(batch_size=batch_size, learning_rate=learning_rate),
                              on_step=update)  # fmt: skip
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "data": loaded.description, "config": model_config.to_dict()}))
    elif result.ok:
        typer.echo(
            f"{model_config.family}: val AUC {result.val_auc:.4f}, val logloss {result.val_logloss:.4f} "
            f"after {result.samples:,} samples in {result.wall_time_s:.1f} s"
        )
        if loaded.noise_floor_logloss is not None:
            typer.echo(
                f"(synthetic data: the planted model's own logloss, the floor, is {loaded.noise_floor_logloss:.4f})"
            )
    if not result.ok:
        typer.echo(f"Training failed: {result.error}", err=True)
        raise typer.Exit(1)


@app.command()
def families() -> None:
    """List the registered model families."""
    for name in list_mixers():
        family = get_family(name)
        knobs = ", ".join(sorted(family.knobs)) or "-"
        typer.echo(f"{name:<16} knobs: {knobs:<20} {family.summary}")
