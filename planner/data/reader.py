"""Stream a CTR table (plain or gzip, tab or comma separated) into raw arrays, chunk by chunk.

The raw text never sits in memory whole: lines are read ``chunk_rows`` at a time and each
chunk is reduced to numbers at once: labels, dense values (NaN = missing) and 64-bit
hashes of categorical values (0 = missing). Every problem is reported with file, line
and column.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from unimixer_plan.data.errors import DataError
from unimixer_plan.data.schema import TableSchema

MISSING_HASH = np.uint64(0)


@dataclass(frozen=True)
class RawTable:
    labels: np.ndarray  # (rows,) float32 in {0, 1}
    dense: np.ndarray  # (rows, num_dense) float64, NaN = missing
    categorical: np.ndarray  # (rows, num_categorical) uint64 hashes, 0 = missing

    def __len__(self) -> int:
        return len(self.labels)


def _open_text(path: Path) -> io.TextIOBase:
    try:
        with path.open("rb") as probe:
            magic = probe.read(2)
    except FileNotFoundError:
        raise DataError(path, "file does not exist") from None
    except (IsADirectoryError, PermissionError) as err:
        raise DataError(path, f"cannot be read ({type(err).__name__})") from None
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _lines(path: Path, handle: io.TextIOBase) -> Iterator[str]:
    line_number = 0
    try:
        for line_number, line in enumerate(handle, start=1):  # noqa: B007
            yield line
    except (EOFError, OSError, zlib.error) as err:
        raise DataError(path, f"corrupt or truncated gzip stream ({err})", line=line_number + 1) from None
    except UnicodeDecodeError:
        raise DataError(path, "not UTF-8 text", line=line_number + 1) from None


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _hash_column(values: np.ndarray) -> np.ndarray:
    hashed = pd.util.hash_array(values.astype(object), categorize=True)
    hashed[hashed == MISSING_HASH] = 1  # keep 0 for "missing"; a real collision is ~2^-64
    hashed[values == ""] = MISSING_HASH
    return hashed


def read_table(
    path: str | Path, schema: TableSchema, chunk_rows: int = 65_536, max_rows: int | None = None
) -> RawTable:
    """Read ``path`` as described by ``schema``; at most ``max_rows`` data rows."""
    path = Path(path)
    with _open_text(path) as handle:
        lines = _lines(path, handle)
        first = next(lines, None)
        if first is None or not first.strip():
            raise DataError(path, "empty file: no header and no rows", line=1)
        separator = schema.separator or ("\t" if "\t" in first else ",")
        first_fields = first.rstrip("\r\n").split(separator)
        header = schema.header if schema.header is not None else not _looks_numeric(first_fields[0])
        columns = tuple(first_fields) if header else schema.columns
        if columns is None:
            raise DataError(path, "no header line and the schema does not list 'columns'", line=1)
        if header and schema.columns is not None and tuple(first_fields) != schema.columns:
            # A header that disagrees with the schema's order is trusted, but it must contain the used columns.
            columns = tuple(first_fields)
        missing = [c for c in schema.used_columns if c not in columns]
        if missing:
            raise DataError(path, f"the header has no column {missing[0]!r}", line=1)
        index = {name: i for i, name in enumerate(columns)}
        body = lines if header else itertools.chain([first], lines)
        chunks: list[RawTable] = []
        start_line = 2 if header else 1
        rows_left = max_rows if max_rows is not None else float("inf")
        while rows_left > 0:
            block = list(itertools.islice(body, int(min(chunk_rows, rows_left))))
            if not block:
                break
            chunks.append(_parse_block(path, block, start_line, separator, len(columns), index, schema))
            start_line += len(block)
            rows_left -= len(block)
    if not chunks:
        raise DataError(path, "no data rows after the header", line=start_line)
    return RawTable(
        labels=np.concatenate([c.labels for c in chunks]),
        dense=np.concatenate([c.dense for c in chunks]),
        categorical=np.concatenate([c.categorical for c in chunks]),
    )


def _parse_block(
    path: Path,
    block: list[str],
    start_line: int,
    separator: str,
    n_columns: int,
    index: dict[str, int],
    schema: TableSchema,
) -> RawTable:
    """Fast path: pandas' C parser on the whole chunk. Anything unexpected (a column count,
    a value that is not a number, a label not in {0, 1}) sends the chunk to the exact path,
    which names the line and column."""
    text = "".join(block)
    if text.count(separator) != (n_columns - 1) * len(block):
        return _parse_block_exact(path, block, start_line, separator, n_columns, index, schema)
    numeric_columns = (schema.label, *schema.dense)
    names = [f"_{i}" for i in range(n_columns)]
    numeric_names = {names[index[c]] for c in numeric_columns}
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=separator,
            header=None,
            names=names,
            usecols=[names[index[c]] for c in schema.used_columns],
            dtype={n: (np.float64 if n in numeric_names else str) for n in names},
            keep_default_na=False,
            na_values={n: [""] for n in numeric_names},
            quoting=csv.QUOTE_NONE,
            skip_blank_lines=False,
            engine="c",
        )
    except (ValueError, pd.errors.ParserError):
        return _parse_block_exact(path, block, start_line, separator, n_columns, index, schema)
    labels = frame[names[index[schema.label]]].to_numpy(np.float64)
    if len(frame) != len(block) or not np.isin(labels, (0.0, 1.0)).all():
        return _parse_block_exact(path, block, start_line, separator, n_columns, index, schema)
    dense = frame[[names[index[c]] for c in schema.dense]].to_numpy(np.float64).reshape(len(block), -1)
    categorical = np.zeros((len(block), len(schema.categorical)), dtype=np.uint64)
    for j, column in enumerate(schema.categorical):
        categorical[:, j] = _hash_column(frame[names[index[column]]].to_numpy(object))
    return RawTable(labels=labels.astype(np.float32), dense=dense, categorical=categorical)


def _parse_block_exact(
    path: Path,
    block: list[str],
    start_line: int,
    separator: str,
    n_columns: int,
    index: dict[str, int],
    schema: TableSchema,
) -> RawTable:
    """Field-by-field parse of one chunk that raises DataError at the first problem."""
    rows = [line.rstrip("\r\n").split(separator) for line in block]
    for offset, fields in enumerate(rows):
        if len(fields) != n_columns:
            raise DataError(
                path, f"expected {n_columns} columns, found {len(fields)}", line=start_line + offset, column=None
            )
    table = np.array(rows, dtype=object)

    def numeric(name: str) -> np.ndarray:
        text = table[:, index[name]]
        values = pd.to_numeric(pd.Series(text), errors="coerce").to_numpy(np.float64)
        bad = np.flatnonzero(np.isnan(values) & (text != ""))
        if bad.size:
            row = int(bad[0])
            raise DataError(path, f"{text[row]!r} is not a number", line=start_line + row, column=name)
        return values

    labels = numeric(schema.label)
    bad_label = np.flatnonzero(~np.isin(labels, (0.0, 1.0)))
    if bad_label.size:
        row = int(bad_label[0])
        value = table[row, index[schema.label]]
        raise DataError(path, f"label {value!r} must be 0 or 1", line=start_line + row, column=schema.label)
    dense = np.stack([numeric(name) for name in schema.dense], axis=1) if schema.dense else np.zeros((len(rows), 0))
    categorical = (
        np.stack([_hash_column(table[:, index[name]]) for name in schema.categorical], axis=1)
        if schema.categorical
        else np.zeros((len(rows), 0), dtype=np.uint64)
    )
    return RawTable(labels=labels.astype(np.float32), dense=dense, categorical=categorical)
