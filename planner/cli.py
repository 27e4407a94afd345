"""The ``unimixer-plan`` command line.

Library code raises :class:`mixers.PlanError`; this module is the only place that turns
it into one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from mixers import PlanError, get_family, list_mixers, load_config
from planner.formatting import format_count, format_flops

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


@app.command()
def families() -> None:
    """List the registered model families."""
    for name in list_mixers():
        family = get_family(name)
        knobs = ", ".join(sorted(family.knobs)) or "-"
        typer.echo(f"{name:<16} knobs: {knobs:<20} {family.summary}")
