"""The data options of the command line (plan and train share them) and the DataSpec they make."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

# The data layer (and torch behind it) loads only when a spec is made: see cli.py.
if TYPE_CHECKING:
    from unimixer_plan.data import DataSpec

DatasetOption = Annotated[str, typer.Option(help="Dataset schema: criteo (or describe your own with --schema).")]
DataOption = Annotated[
    Path | None,
    typer.Option(
        help="Real data file: CSV/TSV, libSVM/libFM (.libfm, .libsvm, .svm), libFFM (.libffm, .ffm) or Parquet; "
        "plain or gzip. Omit for the synthetic generator of the schema."
    ),
]
SchemaOption = Annotated[Path | None, typer.Option(help="YAML schema of your own table (label, dense, categorical).")]
MinCountOption = Annotated[int, typer.Option(help="Categorical values rarer than this in training map to OOV.")]
HashOption = Annotated[int | None, typer.Option(help="Hash categorical values into this many ids instead.")]
MaxRowsOption = Annotated[int | None, typer.Option(help="Read at most this many rows of --data.")]
FormatOption = Annotated[
    str | None,
    typer.Option("--format", help="Data format: csv, tsv, libsvm, libfm, libffm, parquet (default: by extension)."),
]
PositiveLabelOption = Annotated[
    str | None, typer.Option(help="The label value that means a click, e.g. 'click' (default: labels 0/1 or -1/1).")
]
ValidOption = Annotated[Path | None, typer.Option(help="Separate validation file (same format and columns as --data).")]
TestOption = Annotated[Path | None, typer.Option(help="Separate test file (same format and columns as --data).")]
ValFractionOption = Annotated[
    float, typer.Option(help="Without --valid: the share of --data's rows, after the training rows, that validates.")
]
TestFractionOption = Annotated[
    float, typer.Option(help="Without --test: the share of --data's rows, at its end, that tests.")
]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        help="Folder of the encoded-data cache (default: $UNIMIXER_PLAN_CACHE_DIR or ~/.cache/unimixer-plan)."
    ),
]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Encode --data in memory; write no cache.")]


def data_spec(
    dataset: str,
    data: Path | None,
    schema: Path | None,
    seed: int,
    min_count: int = 10,
    hash_buckets: int | None = None,
    max_rows: int | None = None,
    fmt: str | None = None,
    positive_label: str | None = None,
    valid: Path | None = None,
    test: Path | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    cache_dir: Path | None = None,
    no_cache: bool = False,
) -> DataSpec:
    from unimixer_plan.data import DataSpec

    return DataSpec(
        dataset=dataset,
        path=str(data) if data else None,
        schema_path=str(schema) if schema else None,
        min_count=min_count,
        hash_buckets=hash_buckets,
        max_rows=max_rows,
        seed=seed,
        format=fmt,
        positive_label=positive_label,
        valid_path=str(valid) if valid else None,
        test_path=str(test) if test else None,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        cache=not no_cache,
        cache_dir=str(cache_dir) if cache_dir else None,
    )
