"""Stream a delimited CTR table (CSV/TSV, plain or gzip) into raw arrays, chunk by chunk.

The raw text never sits in memory whole: lines are read ``chunk_rows`` at a time and each
chunk is reduced to numbers at once: labels, dense values (NaN = missing) and 64-bit
hashes of categorical values (0 = missing). Every problem is reported with file, line
and column.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from unimixer_plan.data.errors import DataError
from unimixer_plan.data.labels import LabelDecoder
from unimixer_plan.data.raw import MISSING_HASH, RawTable, concatenate, hash_values
from unimixer_plan.data.schema import TableSchema
from unimixer_plan.data.textfile import first_line, lines, open_text

__all__ = ["MISSING_HASH", "DelimitedReader", "RawTable", "read_table"]


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class DelimitedReader:
    """One CSV/TSV file: its columns are known on opening (from the header or the schema)."""

    format = "csv"

    def __init__(self, path: Path, schema: TableSchema, labels: LabelDecoder, separator: str | None = None) -> None:
        self.path, self.schema, self.labels = path, schema, labels
        first = first_line(path)
        if first is None or not first.strip():
            raise DataError(path, "empty file: no header and no rows", line=1)
        self.separator = schema.separator or separator or ("\t" if "\t" in first else ",")
        first_fields = first.rstrip("\r\n").split(self.separator)
        self.header = schema.header if schema.header is not None else not _looks_numeric(first_fields[0])
        # A header that disagrees with the schema's order is trusted, but it must contain the used columns.
        columns = tuple(first_fields) if self.header else schema.columns
        if columns is None:
            raise DataError(path, "no header line and the schema does not list 'columns'", line=1)
        missing = [c for c in schema.used_columns if c not in columns]
        if missing:
            raise DataError(path, f"the header has no column {missing[0]!r}", line=1)
        self.columns: tuple[str, ...] = columns
        self.index = {name: i for i, name in enumerate(columns)}

    def chunks(self, chunk_rows: int = 65_536, max_rows: int | None = None) -> Iterator[RawTable]:
        path = self.path
        start_line = 2 if self.header else 1
        rows_left = max_rows if max_rows is not None else float("inf")
        emitted = False
        with open_text(path) as handle:
            body = lines(path, handle)
            if self.header:
                next(body)
            while rows_left > 0:
                block = list(itertools.islice(body, int(min(chunk_rows, rows_left))))
                if not block:
                    break
                yield _parse_block(
                    path, block, start_line, self.separator, len(self.columns), self.index, self.schema, self.labels
                )
                emitted = True
                start_line += len(block)
                rows_left -= len(block)
        if not emitted:
            raise DataError(path, "no data rows after the header", line=start_line)


def read_table(
    path: str | Path,
    schema: TableSchema,
    chunk_rows: int = 65_536,
    max_rows: int | None = None,
    labels: LabelDecoder | None = None,
) -> RawTable:
    """Read ``path`` as described by ``schema`` into memory; at most ``max_rows`` data rows."""
    reader = DelimitedReader(Path(path), schema, labels or LabelDecoder())
    return concatenate(list(reader.chunks(chunk_rows, max_rows)))


def _parse_block(
    path: Path,
    block: list[str],
    start_line: int,
    separator: str,
    n_columns: int,
    index: dict[str, int],
    schema: TableSchema,
    labels: LabelDecoder | None = None,
) -> RawTable:
    """Fast path: pandas' C parser on the whole chunk. Anything unexpected (a column count,
    a value that is not a number) sends the chunk to the exact path, which names the line
    and column."""
    labels = labels or LabelDecoder()
    text = "".join(block)
    if text.count(separator) != (n_columns - 1) * len(block):
        return _parse_block_exact(path, block, start_line, separator, n_columns, index, schema, labels)
    # Labels stay text when a positive value is named: "click"/"noclick" are not numbers.
    numeric_columns = (schema.label, *schema.dense) if labels.positive is None else schema.dense
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
        return _parse_block_exact(path, block, start_line, separator, n_columns, index, schema, labels)
    if len(frame) != len(block):
        return _parse_block_exact(path, block, start_line, separator, n_columns, index, schema, labels)
    label_values = frame[names[index[schema.label]]].to_numpy()
    decoded = labels.decode(label_values, path, start_line, column=schema.label)
    dense = frame[[names[index[c]] for c in schema.dense]].to_numpy(np.float64).reshape(len(block), -1)
    categorical = np.zeros((len(block), len(schema.categorical)), dtype=np.uint64)
    for j, column in enumerate(schema.categorical):
        categorical[:, j] = hash_values(frame[names[index[column]]].to_numpy(object))
    return RawTable(labels=decoded, dense=dense, categorical=categorical)


def _parse_block_exact(
    path: Path,
    block: list[str],
    start_line: int,
    separator: str,
    n_columns: int,
    index: dict[str, int],
    schema: TableSchema,
    labels: LabelDecoder | None = None,
) -> RawTable:
    """Field-by-field parse of one chunk that raises DataError at the first problem."""
    labels = labels or LabelDecoder()
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

    decoded = labels.decode(table[:, index[schema.label]], path, start_line, column=schema.label)
    dense = np.stack([numeric(name) for name in schema.dense], axis=1) if schema.dense else np.zeros((len(rows), 0))
    categorical = (
        np.stack([hash_values(table[:, index[name]]) for name in schema.categorical], axis=1)
        if schema.categorical
        else np.zeros((len(rows), 0), dtype=np.uint64)
    )
    return RawTable(labels=decoded, dense=dense, categorical=categorical)
