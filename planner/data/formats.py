"""Which reader a data file needs: by extension (under a ``.gz`` too), or ``--format``.

Every reader is a *source*: its ``columns`` (header, Parquet columns or sparse fields) are known on
opening, its ``schema`` is the one the rows are read with, and ``chunks()`` streams RawTable
chunks. The validation and test files of a load are opened like the training file and must
match it: the same format and the same columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from unimixer_plan.data.errors import DataError
from unimixer_plan.data.labels import LabelDecoder
from unimixer_plan.data.libsvm import SparseLayout, SparseTextReader, layout_for
from unimixer_plan.data.parquet import ParquetReader
from unimixer_plan.data.raw import RawTable
from unimixer_plan.data.reader import DelimitedReader
from unimixer_plan.data.schema import CRITEO_SCHEMA, TableSchema

# --format values; libsvm and libfm are one format (libFM files are libSVM files with one pair per field).
FORMATS = ("csv", "tsv", "libsvm", "libfm", "libffm", "parquet")
_EXTENSIONS = {
    ".libfm": "libfm",
    ".libsvm": "libfm",
    ".svm": "libfm",
    ".libffm": "libffm",
    ".ffm": "libffm",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class Source(Protocol):
    path: Path
    format: str
    schema: TableSchema
    columns: tuple[str, ...]

    def chunks(self, chunk_rows: int = ..., max_rows: int | None = ...) -> Iterator[RawTable]: ...


def detect_format(path: Path, override: str | None = None) -> tuple[str, str | None]:
    """(format, separator): csv (delimited text; separator None = the schema's or detected), libfm,
    libffm or parquet. ``--format csv`` / ``tsv`` fix the separator; by extension it is detected."""
    if override is not None:
        if override not in FORMATS:
            raise DataError(path, f"--format {override!r}: unknown; allowed: {', '.join(FORMATS)}")
        separators = {"csv": ",", "tsv": "\t"}
        if override in separators:
            return "csv", separators[override]
        return ("libfm" if override == "libsvm" else override), None
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    # .csv, .tsv and every unknown extension (Kaggle's train.txt) are delimited text, the separator detected.
    return (_EXTENSIONS.get(suffixes[-1], "csv") if suffixes else "csv"), None


def open_source(
    path: Path,
    fmt: str,
    schema: TableSchema | None,
    labels: LabelDecoder,
    separator: str | None = None,
    schema_path: str | None = None,
    layout: SparseLayout | None = None,
) -> Source:
    """Open ``path`` as ``fmt``. ``schema`` None: Criteo for named columns, one-hot fields for the
    sparse text formats (see libsvm). ``layout``: the training file's, which its splits follow."""
    if fmt in ("libfm", "libffm"):
        layout = layout or layout_for(path, schema, ffm=fmt == "libffm", schema_path=schema_path)
        return SparseTextReader(path, layout, labels, ffm=fmt == "libffm")
    if fmt == "parquet":
        return ParquetReader(path, schema or CRITEO_SCHEMA, labels)
    return DelimitedReader(path, schema or CRITEO_SCHEMA, labels, separator=separator)


def check_matches(split: str, source: Source, training: Source) -> None:
    """A validation or test file holds the training file's columns, or one line says which differs."""
    theirs, ours = set(training.columns), set(source.columns)
    extra = [c for c in source.columns if c not in theirs]
    missing = [c for c in training.columns if c not in ours]
    if missing or extra:
        what = "has no column" if missing else "has a column the training file lacks:"
        raise DataError(
            source.path,
            f"{split} file {what} {(missing or extra)[0]!r}; its columns must be the training file's ({training.path})",
            column=(missing or extra)[0],
        )
