"""The ``unimixer-plan`` command line.

Library code raises :class:`unimixer_plan.errors.PlanError`; this module is the only place that turns
it into one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from unimixer_plan.data_options import (
    CacheDirOption,
    DataOption,
    DatasetOption,
    FormatOption,
    HashOption,
    MaxRowsOption,
    MinCountOption,
    NoCacheOption,
    PositiveLabelOption,
    SchemaOption,
    TestFractionOption,
    TestOption,
    ValFractionOption,
    ValidOption,
    data_spec,
)
from unimixer_plan.errors import PlanError
from unimixer_plan.formatting import format_count, format_flops
from unimixer_plan.progress import run_with_progress
from unimixer_plan.resume_options import resumed_plan
from unimixer_plan.search.ray_address import check_ray_address
from unimixer_plan.stdout_guard import stdout_to_stderr
from unimixer_plan.summary_text import print_summary

DEFAULT_TRIALS = 45  # PlanConfig's own default (plan_config imports torch: the CLI imports it when it runs)

# torch, the data layer and the model zoo load inside the commands that need them, so that bad
# input (a wrong --ray-address above all) is answered in a second, not after seconds of imports.

app = typer.Typer(
    name="unimixer-plan",
    help=(
        "Size UniMixer ranking models for a serving budget. Without a subcommand it plans, e.g. "
        "unimixer-plan --flops 2e9 --dataset criteo"
    ),
    add_completion=False,
    pretty_exceptions_enable=False,
)


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except PlanError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(2) from None


# Options shared by several commands.
ConfigPath = Annotated[Path, typer.Argument(help="Model config (YAML or JSON), e.g. examples/unimixing_lite.yaml.")]
SeedOption = Annotated[int, typer.Option(help="Seed for data generation, initialisation and search.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


@app.callback(invoke_without_command=True)
def plan(
    ctx: typer.Context,
    flops: Annotated[float | None, typer.Option(help="Budget: forward FLOPs per sample (2 per multiply-add).")] = None,
    latency_ms: Annotated[
        float | None, typer.Option(help="Budget: forward latency in ms at --batch-size on --device.")
    ] = None,
    params: Annotated[float | None, typer.Option(help="Budget: dense parameters (embeddings excluded).")] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size of the latency budget.")] = 256,
    device: Annotated[str, typer.Option(help="Device of the latency budget: cpu, cuda or cuda:N.")] = "cpu",
    dataset: DatasetOption = "criteo",
    data: DataOption = None,
    schema: SchemaOption = None,
    min_count: MinCountOption = 10,
    hash_buckets: HashOption = None,
    max_rows: MaxRowsOption = None,
    fmt: FormatOption = None,
    positive_label: PositiveLabelOption = None,
    valid: ValidOption = None,
    test: TestOption = None,
    val_fraction: ValFractionOption = 0.1,
    test_fraction: TestFractionOption = 0.1,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    families: Annotated[
        list[str] | None,
        typer.Option(
            "--families",
            help="A family to search (repeat the option), or 'all'. Default: rankmixer, unimixer and "
            "unimixing_lite (every family of --space FILE).",
        ),
    ] = None,
    space: Annotated[
        Path | None, typer.Option(help="Your own search space (format of search_spaces/default.yaml).")
    ] = None,
    trials: Annotated[
        int,
        typer.Option(
            help="Trials to run in all: a ladder splits what its measurements (data points and seed replicates "
            "of each rung's best shapes) leave over its rungs, at least one per family and rung."
        ),
    ] = DEFAULT_TRIALS,
    fidelity: Annotated[
        str,
        typer.Option(
            help="Distinct training samples per trial (a ladder's first rung; it doubles them per rung), each "
            "trained to early stopping: quick (8k), standard (32k), full (131k), or a number."
        ),
    ] = "quick",
    embed_dim: Annotated[
        int | None, typer.Option(help="Fix the embedding width (default: searched, see the space file).")
    ] = None,
    seed: SeedOption = 0,
    out: Annotated[Path | None, typer.Option(help="Run folder. Default: runs/<UTC timestamp>.")] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Join this Ray cluster (host:port) instead of starting a local Ray.")
    ] = None,
    time_budget: Annotated[
        float | None, typer.Option(help="Minutes for the searches; running trials finish, no new ones start.")
    ] = None,
    proxy_max_flops: Annotated[
        float | None,
        typer.Option(
            help="Largest proxy (FLOPs/sample) trained; above it the planner scales up. Default: fits fidelity."
        ),
    ] = None,
    train_samples: Annotated[
        int | None,
        typer.Option(
            help="Distinct samples the production model trains on; a ladder predicts for them. Default: the "
            "dataset's training rows (36,672,493 for --dataset criteo, the Kaggle file's 8:1:1 training split)."
        ),
    ] = None,
    test_seeds: Annotated[
        int,
        typer.Option(
            help="After the choice, re-train the chosen configuration and the runner-up with this many seeds and "
            "score them on the test split (0: skip)."
        ),
    ] = 3,
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs per trial.")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option(help="GPUs per trial (trials train on cuda when > 0).")] = 0.0,
    resume: Annotated[
        Path | None, typer.Option(help="Continue the plan in this run folder; finished trials are kept.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show Ray and Optuna logs.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Plan: search the model families under the budgets and choose a configuration."""
    if ctx.invoked_subcommand is not None:
        return
    with user_errors():
        if resume is None:
            check_ray_address(ray_address)  # before any heavy import; a resumed plan's is checked by run_plan
        from unimixer_plan.plan import default_run_dir
        from unimixer_plan.plan_config import Budget, PlanConfig, parse_fidelity
        from unimixer_plan.run.folder import RunFolder
        from unimixer_plan.search_spaces import requested_families

        if resume is not None:
            plan_config = resumed_plan(ctx, RunFolder(resume))
        else:
            if flops is None and latency_ms is None and params is None:
                typer.echo(ctx.get_help(), err=True)
            plan_config = PlanConfig(
                budget=Budget(flops=flops, params=params, latency_ms=latency_ms, batch_size=batch_size, device=device),
                data=data_spec(
                    dataset,
                    data,
                    schema,
                    seed,
                    min_count,
                    hash_buckets,
                    max_rows,
                    fmt,
                    positive_label,
                    valid,
                    test,
                    val_fraction,
                    test_fraction,
                    cache_dir,
                    no_cache,
                ),
                families=requested_families(families, own_space=space is not None),
                trials=trials,
                fidelity=parse_fidelity(fidelity),
                embed_dim=embed_dim,
                seed=seed,
                out=str(out) if out else default_run_dir(),
                space_path=str(space) if space else None,
                ray_address=ray_address,
                cpus_per_trial=cpus_per_trial,
                gpus_per_trial=gpus_per_trial,
                time_budget_min=time_budget,
                proxy_max_flops=proxy_max_flops,
                train_samples=train_samples,
                test_seeds=test_seeds,
                verbose=verbose,
            )
        # Under --json, stdout holds the JSON alone: what Ray's driver or a native library prints goes
        # to stderr with the progress lines.
        with stdout_to_stderr(as_json):
            outcome = run_with_progress(plan_config, resume=resume is not None)
    summary = outcome.summary
    if as_json:
        typer.echo(json.dumps(summary.to_dict()))
    elif not summary.interrupted:
        print_summary(summary)
    if summary.interrupted:
        stage = f"{summary.trials} of {summary.planned_trials} trials"
        if summary.planned_trials is not None and summary.trials >= summary.planned_trials:
            stage = "every trial, during the test-split check"
        typer.echo(
            f"Interrupted after {stage}; "
            "nothing finished is lost. "
            f"Continue with: unimixer-plan --resume {plan_config.out}",
            err=True,
        )
        raise typer.Exit(130)
    if summary.chosen is None:
        raise typer.Exit(1)


@app.command()
def profile(
    config: ConfigPath,
    batch_size: Annotated[int, typer.Option(help="Batch size for latency and training FLOPs per batch.")] = 256,
    device: Annotated[str, typer.Option(help="Device for latency: cpu, cuda or cuda:N.")] = "cpu",
    latency: Annotated[bool, typer.Option("--latency", help="Also measure forward latency (eval mode).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Count FLOPs (fvcore), parameters and optionally latency of one model config."""
    with user_errors():
        from unimixer_plan.mixers import load_config
        from unimixer_plan.profiling import profile as run_profile  # heavy imports only when needed

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
def train(
    config: ConfigPath,
    dataset: DatasetOption = "criteo",
    data: DataOption = None,
    schema: SchemaOption = None,
    samples: Annotated[
        int | None,
        typer.Option(help="Distinct training samples (default: 100,000 synthetic, or every training row of --data)."),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Training batch size (default: a rule in the training rows).")
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option(help="Adam learning rate (default: the rule in width and depth).")
    ] = None,
    max_epochs: Annotated[
        int | None, typer.Option(help="Epoch cap (default: the trainer's, 12); training stops earlier on a plateau.")
    ] = None,
    min_count: Annotated[
        int | None, typer.Option(help="Categorical values rarer than this in training map to OOV (default: 10).")
    ] = None,
    hash_buckets: HashOption = None,
    max_rows: MaxRowsOption = None,
    fmt: FormatOption = None,
    positive_label: PositiveLabelOption = None,
    valid: ValidOption = None,
    test: TestOption = None,
    val_fraction: Annotated[float | None, typer.Option(help="Without --valid: validation share (default 0.1).")] = None,
    test_fraction: Annotated[float | None, typer.Option(help="Without --test: test share (default 0.1).")] = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    seed: Annotated[int | None, typer.Option(help="Seed for data generation and initialisation (default: 0).")] = None,
    engine: Annotated[str, typer.Option(help="project, or torchrec (DistributedModelParallel).")] = "project",
    nproc: Annotated[int | None, typer.Option(help="torchrec: processes to start (1; torchrun: its ranks).")] = None,
    device_memory_gb: Annotated[float | None, typer.Option(help="torchrec: GB per device for the plan.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train one model config and print validation and test AUC and logloss (the reference trainer;
    the test split neither trains nor chooses the epoch). A plan's chosen.yaml, with no data or
    trainer option, trains the plan's own setting and prints the measurement next to the plan's
    prediction. --engine torchrec --nproc N trains it sharded under TorchRec (gloo on CPU, nccl on
    GPUs; torchrun can launch it: torchrun --nproc-per-node N --no-python unimixer-plan train CONFIG
    --engine torchrec)."""
    with user_errors():
        from unimixer_plan.train_command import CacheChoice, TrainRequest, run_train

        request = TrainRequest(
            dataset,
            data,
            schema,
            samples,
            batch_size,
            learning_rate,
            max_epochs,
            min_count,
            hash_buckets,
            max_rows,
            seed,
            fmt,
            positive_label,
            valid,
            test,
            val_fraction,
            test_fraction,
            engine,
            nproc,
            device_memory_gb,
        )
        run_train(config, request, as_json, cache=CacheChoice(not no_cache, str(cache_dir) if cache_dir else None))


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A plan's run folder.")],
    out: Annotated[Path, typer.Option(help="File to write (a folder for --format torchrec).")],
    fmt: Annotated[str, typer.Option("--format", help="yaml | json | torchscript | onnx | torchrec")] = "yaml",
    trial: Annotated[int | None, typer.Option(help="Export this trial instead of the chosen one.")] = None,
    world_size: Annotated[int | None, typer.Option(help="torchrec: devices of the sharding plan (1).")] = None,
    device_memory_gb: Annotated[float | None, typer.Option(help="torchrec: GB per device for the plan.")] = None,
    device: Annotated[str | None, typer.Option(help="torchrec: cpu or cuda devices (cpu).")] = None,
) -> None:
    """Write the chosen (or any trial's) config for trainers, the built module for serving, or (torchrec)
    a folder with the config, its table specs, the sharding plan and the command that trains it."""
    with user_errors():
        from unimixer_plan.torchrec_export import export_any

        written = export_any(run_dir, fmt, out, trial, world_size, device_memory_gb, device)
    typer.echo(f"wrote {written}")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A plan's run folder.")],
    png: Annotated[
        Path | None, typer.Option(help="Also write each figure as PNG into this folder (needs Chromium).")
    ] = None,
) -> None:
    """Rebuild the offline HTML report of a run folder (and PNGs with --png)."""
    with user_errors():
        from unimixer_plan.reports import write_pngs, write_report

        typer.echo(f"wrote {write_report(run_dir)}")
        if png is not None:
            typer.echo(f"wrote {len(write_pngs(run_dir, png))} PNG files to {png}")


@app.command()
def families() -> None:
    """List the registered model families (baselines are trained as the floor, not searched)."""
    from unimixer_plan.mixers import get_family, list_mixers
    from unimixer_plan.mixers.config import KNOBS

    rows = []
    for name in list_mixers():
        family = get_family(name)
        knobs = ", ".join(k for k in KNOBS if k in family.knobs) or "-"
        rows.append((name, "baseline" if family.baseline else "searched", knobs, family.summary))
    width = max(len(knobs) for _, _, knobs, _ in rows)
    for name, kind, knobs, summary in rows:
        typer.echo(f"{name:<16} {kind:<9} knobs: {knobs:<{width}}  {summary}")
