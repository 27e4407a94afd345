"""Read the sparse text formats of the public CTR benchmarks: libSVM/libFM and libFFM.

- libSVM/libFM (``.libsvm``, ``.libfm``, ``.svm``): ``label idx:value idx:value ...`` with one pair
  per field, in field order, on every line, as in the public Frappe and MovieLens files
  (``-1 451:1 4149:1 ...``). The k-th pair is field k.
- libFFM (``.libffm``, ``.ffm``): ``label field:idx:value ...``; the field is explicit, so a line
  may leave a field out (a missing value), and names it at most once.

How fields map to columns:

- without ``--schema`` every field is categorical and one-hot, which is what the public one-hot
  files need: the feature index is the field's value (its id comes from the vocabulary, like a
  CSV's text), the value must be 1. Fields are named f1..fK (libFM: K = the pairs of line 1) or
  f<number> (libFFM: the field numbers of line 1);
- with ``--schema`` its ``columns`` list the fields in file order (the label may be listed, it is
  always the line's first token; libFFM field n is the n-th listed field, from 0). A ``dense``
  field's value is the number (its index is ignored); a ``categorical`` field's index is the value
  and its value must be 1; a ``drop`` field is skipped.

A missing value is written ``idx:nan`` (any field) or, on a categorical field, ``idx:0`` (libSVM's
zero is an absent feature); a dense 0 is a real 0. Categorical values are hashed from the index's
text, as a CSV's values are from theirs, so the same rows give the same vocabulary ids in every
format (by count and first appearance: ``preprocess``).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from unimixer_plan.data.errors import DataError
from unimixer_plan.data.labels import LabelDecoder
from unimixer_plan.data.raw import RawTable, hash_values
from unimixer_plan.data.schema import TableSchema
from unimixer_plan.data.textfile import first_line, lines, open_text

CATEGORICAL_VALUES = "1 (present), or 0 or nan (missing)"
_TWO_COLONS = re.compile(r":[^\s:]*:")  # a token with two colons (a libFFM pair, or a typo)
_LABEL_COLON = re.compile(r"(?m)^[^\S\n]*[^\s:]*:")  # a colon in a line's first token


@dataclass(frozen=True)
class SparseLayout:
    """Which column each field of a sparse text file fills."""

    schema: TableSchema
    fields: tuple[str, ...]  # file order (libFM: position; libFFM: see numbers)
    numbers: tuple[int, ...] | None  # libFFM: the field number of each field; None for libFM

    @property
    def targets(self) -> list[tuple[str, int]]:
        """Per field: ("dense" | "categorical" | "drop", column index in that block)."""
        dense = {name: j for j, name in enumerate(self.schema.dense)}
        categorical = {name: j for j, name in enumerate(self.schema.categorical)}
        return [
            ("dense", dense[f]) if f in dense else ("categorical", categorical[f]) if f in categorical else ("drop", -1)
            for f in self.fields
        ]


def layout_for(path: Path, schema: TableSchema | None, ffm: bool, schema_path: str | None = None) -> SparseLayout:
    if schema is not None:
        if schema.columns is None:
            where = schema_path or schema.name
            raise DataError(where, "a libSVM/libFFM file has no header: list its fields in file order under 'columns'")
        fields = tuple(c for c in schema.columns if c != schema.label)
        return SparseLayout(schema, fields, tuple(range(len(fields))) if ffm else None)
    first = first_line(path)
    if first is None or not first.split():
        raise DataError(path, "empty file: no rows", line=1)
    pairs = first.split()[1:]
    if ffm:
        numbers = sorted({_field_number(path, pair) for pair in pairs})
        fields = tuple(f"f{n}" for n in numbers)
    else:
        numbers, fields = None, tuple(f"f{k}" for k in range(1, len(pairs) + 1))
    if not fields:
        raise DataError(path, "line 1 has a label and no pairs: no field to learn from", line=1)
    name = "libffm" if ffm else "libfm"
    derived = TableSchema(label="label", dense=(), categorical=fields, columns=("label", *fields), name=name)
    return SparseLayout(derived, fields, tuple(numbers) if numbers is not None else None)


def _field_number(path: Path, pair: str) -> int:
    field = pair.split(":", 1)[0]
    if not field.isdigit() or pair.count(":") != 2:
        raise DataError(path, f"pair {pair!r} is not field:index:value (e.g. 3:451:1)", line=1)
    return int(field)


class SparseTextReader:
    def __init__(self, path: Path, layout: SparseLayout, labels: LabelDecoder, ffm: bool) -> None:
        self.path, self.layout, self.labels, self.ffm = path, layout, labels, ffm
        self.format = "libffm" if ffm else "libfm"
        self.schema = layout.schema
        self.columns = layout.fields

    def chunks(self, chunk_rows: int = 65_536, max_rows: int | None = None) -> Iterator[RawTable]:
        parse = _parse_ffm if self.ffm else _parse_fm
        start_line, emitted = 1, False
        rows_left = max_rows if max_rows is not None else float("inf")
        with open_text(self.path) as handle:
            body = lines(self.path, handle)
            while rows_left > 0:
                block = list(itertools.islice(body, int(min(chunk_rows, rows_left))))
                if not block:
                    break
                yield parse(self.path, block, start_line, self.layout, self.labels)
                emitted = True
                start_line += len(block)
                rows_left -= len(block)
        if not emitted:
            raise DataError(self.path, "empty file: no rows", line=1)


def _parse_fm(path: Path, block: list[str], start_line: int, layout: SparseLayout, labels: LabelDecoder) -> RawTable:
    """Fast path: pandas' C parser on the chunk with ':' read as a space, valid only when the chunk
    has one colon per pair (so the tokens line up as label, index, value, ...); anything else goes
    to the exact path, which names the line and the pair."""
    k, n = len(layout.fields), len(block)
    text = "".join(block)
    if text.count(":") == n * k and not _TWO_COLONS.search(text) and not _LABEL_COLON.search(text):
        # Values parse as floats in C ("nan" is a missing value); indices stay text, like a CSV's values.
        numeric = {0} if labels.positive is None else set()
        numeric.update(range(2, 2 + 2 * k, 2))
        try:
            frame = pd.read_csv(
                io.StringIO(text.replace(":", " ")),
                sep=r"\s+",
                header=None,
                names=range(1 + 2 * k),
                dtype={c: (np.float64 if c in numeric else object) for c in range(1 + 2 * k)},
                keep_default_na=False,
                na_values={c: ["nan", "NaN", "NAN"] for c in numeric},
                engine="c",
            )
        except (ValueError, pd.errors.ParserError):
            frame = None
        # A short line leaves "" indices, a long first line an index: both are for the exact path.
        if frame is not None and len(frame) == n and isinstance(frame.index, pd.RangeIndex):
            index = frame[list(range(1, 1 + 2 * k, 2))].to_numpy(dtype=object)
            if not (index == "").any():
                decoded = labels.decode(frame[0].to_numpy(), path, start_line, column=layout.schema.label)
                value = frame[list(range(2, 2 + 2 * k, 2))].to_numpy(dtype=np.float64).reshape(-1)
                row, position = np.repeat(np.arange(n), k), np.tile(np.arange(k), n)
                with contextlib.suppress(DataError):  # the exact path names it with the pair's own text
                    return _fill(path, start_line, layout, decoded, row, position, index.reshape(-1), value, "libffm")
    return _parse_fm_exact(path, block, start_line, layout, labels)


def _parse_fm_exact(
    path: Path, block: list[str], start_line: int, layout: SparseLayout, labels: LabelDecoder
) -> RawTable:
    rows = [line.split() for line in block]
    k = len(layout.fields)
    for offset, tokens in enumerate(rows):
        if len(tokens) != k + 1:
            raise DataError(
                path,
                f"expected a label and {k} index:value pairs (one per field, in field order: "
                f"{_listed(layout.fields)}), found {max(len(tokens) - 1, 0)} pairs",
                line=start_line + offset,
            )
    table = np.array(rows, dtype=str).reshape(len(rows), k + 1)
    decoded = labels.decode(table[:, 0].astype(object), path, start_line, column=layout.schema.label)
    pairs = table[:, 1:].reshape(-1)
    index, separator, value = np.strings.partition(pairs, ":")
    row = np.repeat(np.arange(len(rows)), k)
    position = np.tile(np.arange(k), len(rows))
    bad = np.flatnonzero(separator != ":")
    if bad.size:
        i = int(bad[0])
        raise DataError(
            path,
            f"pair {str(pairs[i])!r} is not index:value (a non-negative integer, ':', a number; e.g. 451:1)",
            line=start_line + int(row[i]),
            column=layout.fields[position[i]],
        )
    return _fill(path, start_line, layout, decoded, row, position, index, value, "libffm")


def _parse_ffm(path: Path, block: list[str], start_line: int, layout: SparseLayout, labels: LabelDecoder) -> RawTable:
    rows = [line.split() for line in block]
    for offset, tokens in enumerate(rows):
        if not tokens:
            raise DataError(path, "empty line: expected a label and field:index:value pairs", line=start_line + offset)
    decoded = labels.decode(np.array([t[0] for t in rows], dtype=object), path, start_line, column=layout.schema.label)
    counts = np.array([len(t) - 1 for t in rows])
    pairs = np.array([p for t in rows for p in t[1:]], dtype=str)
    row = np.repeat(np.arange(len(rows)), counts)
    field, first_sep, rest = np.strings.partition(pairs, ":")
    index, second_sep, value = np.strings.partition(rest, ":")
    bad = np.flatnonzero((first_sep != ":") | (second_sep != ":") | ~np.char.isdigit(field))
    if bad.size:
        i = int(bad[0])
        hint = " (index:value pairs are libSVM/libFM: --format libfm)" if pairs[i].count(":") == 1 else ""
        raise DataError(
            path, f"pair {str(pairs[i])!r} is not field:index:value (e.g. 3:451:1){hint}", line=start_line + int(row[i])
        )
    lookup = {n: p for p, n in enumerate(layout.numbers or ())}
    numbers = field.astype(np.int64)
    position = np.array([lookup.get(int(n), -1) for n in numbers], dtype=np.int64)
    unknown = np.flatnonzero(position < 0)
    if unknown.size:
        i = int(unknown[0])
        known = f"{min(lookup)}..{max(lookup)}" if lookup else "none"
        raise DataError(
            path,
            f"field {numbers[i]} is not a field of this data (fields {known}: those of the training file's line 1, "
            "or the schema's 'columns' numbered from 0)",
            line=start_line + int(row[i]),
        )
    key = row * len(layout.fields) + position
    unique, seen = np.unique(key, return_counts=True)
    if (seen > 1).any():
        twice = np.flatnonzero(key == unique[np.flatnonzero(seen > 1)[0]])[1]
        raise DataError(
            path,
            f"field {numbers[twice]} appears twice on the line; libFFM names each field at most once",
            line=start_line + int(row[twice]),
            column=layout.fields[position[twice]],
        )
    return _fill(path, start_line, layout, decoded, row, position, index, value, None)


def _fill(
    path: Path,
    start_line: int,
    layout: SparseLayout,
    labels: np.ndarray,
    row: np.ndarray,
    position: np.ndarray,
    index: np.ndarray,
    value: np.ndarray,
    three_part_format: str | None,
) -> RawTable:
    """Scatter the pairs (row, field position, index text, value text) into the raw arrays."""
    n, schema = len(labels), layout.schema
    if value.dtype == np.float64:  # the fast path parsed them
        numbers, not_number = value, np.zeros(len(value), dtype=bool)
    else:
        numbers = pd.to_numeric(pd.Series(value, dtype=object), errors="coerce").to_numpy(np.float64)
        not_number = np.isnan(numbers)
        not_number[not_number] = [str(v).lower() != "nan" for v in value[not_number]]  # few: the missing values
    targets = layout.targets
    kind = np.array([t[0] for t in targets] + ["drop"])[position]
    column = np.array([t[1] for t in targets] + [-1])[position]
    categorical = kind == "categorical"
    bad_index = categorical & ~np.strings.isdigit(index.astype(str))
    bad_value = categorical & ~(np.isnan(numbers) | (numbers == 0) | (numbers == 1))
    for mask, problem in (
        (not_number, "value {value!r} is not a number"),
        (bad_index, "the index {index!r} is not a non-negative integer"),
        (
            bad_value,
            f"field {{field}} is categorical (one-hot): its value must be {CATEGORICAL_VALUES}, found {{value!r}}",
        ),
    ):
        bad = np.flatnonzero(mask & (kind != "drop"))
        if bad.size:
            i = int(bad[0])
            field = layout.fields[position[i]]
            text = problem.format(value=str(value[i]), index=str(index[i]), field=field)
            if three_part_format and ":" in str(value[i]):
                text += f" (a three-part pair: read {three_part_format} with --format {three_part_format})"
            elif mask is bad_value:
                text += "; name numeric fields under 'dense' in --schema"
            pair = (
                f"{index[i]}:{value[i]}"
                if three_part_format
                else f"{position_number(layout, position[i])}:{index[i]}:{value[i]}"
            )
            raise DataError(path, f"pair {pair!r}: {text}", line=start_line + int(row[i]), column=field)
    dense = np.full((n, len(schema.dense)), np.nan)
    is_dense = kind == "dense"
    dense[row[is_dense], column[is_dense]] = numbers[is_dense]
    texts = np.full((n, len(schema.categorical)), "", dtype=object)
    present = categorical & (numbers == 1)
    texts[row[present], column[present]] = index[present].astype(object)
    hashed = hash_values(texts.reshape(-1)).reshape(n, len(schema.categorical))
    return RawTable(labels=labels, dense=dense, categorical=hashed)


def position_number(layout: SparseLayout, position: int) -> int:
    return layout.numbers[position] if layout.numbers else position


def _listed(fields: tuple[str, ...]) -> str:
    return ", ".join(fields) if len(fields) <= 6 else f"{', '.join(fields[:3])}, ..., {fields[-1]}"
