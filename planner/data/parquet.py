"""Read a Parquet CTR table (pyarrow, row group by row group), columns by name from the schema.

Label and dense columns must hold numbers (a named ``--positive-label`` may also be text or a
boolean); a categorical column may hold text or integers, read as their text so that the
integer 123 and a CSV's "123" are the same value. A null is a missing value, as an empty CSV
field is; there are no line numbers, so problems name the row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from unimixer_plan.data.errors import DataError
from unimixer_plan.data.labels import LabelDecoder
from unimixer_plan.data.raw import RawTable, hash_values
from unimixer_plan.data.schema import TableSchema
from unimixer_plan.data.textfile import GZIP_MAGIC


class ParquetReader:
    format = "parquet"

    def __init__(self, path: Path, schema: TableSchema, labels: LabelDecoder) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path, self.schema, self.labels = path, schema, labels
        try:
            with path.open("rb") as probe:
                if probe.read(2) == GZIP_MAGIC:
                    raise DataError(path, "gzip-compressed Parquet is not read: Parquet compresses its own pages")
            self._file = pq.ParquetFile(path)
        except FileNotFoundError:
            raise DataError(path, "file does not exist") from None
        except (IsADirectoryError, PermissionError, pa.ArrowException) as err:
            raise DataError(path, f"cannot be read as Parquet ({type(err).__name__}: {err})") from None
        self.columns: tuple[str, ...] = tuple(self._file.schema_arrow.names)
        missing = [c for c in schema.used_columns if c not in self.columns]
        if missing:
            raise DataError(
                path, f"no such column; the schema needs it, the file has {_listed(self.columns)}", column=missing[0]
            )
        types = self._file.schema_arrow
        for name in (*schema.dense, *(() if labels.positive else (schema.label,))):
            kind = types.field(name).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
                raise DataError(path, f"type {kind} is not a number; label and dense columns hold numbers", column=name)

    def chunks(self, chunk_rows: int = 65_536, max_rows: int | None = None) -> Iterator[RawTable]:
        import pyarrow as pa
        import pyarrow.compute as pc

        schema, done = self.schema, 0
        batches = self._file.iter_batches(batch_size=chunk_rows, columns=list(schema.used_columns))
        try:
            for batch in batches:
                if max_rows is not None and done >= max_rows:
                    break
                if max_rows is not None and done + batch.num_rows > max_rows:
                    batch = batch.slice(0, max_rows - done)
                n = batch.num_rows
                label = batch.column(schema.label)
                label_values = (
                    label.cast(pa.string()).fill_null("").to_numpy(zero_copy_only=False)
                    if self.labels.positive and not pa.types.is_boolean(label.type)
                    else _floats(label)
                )
                decoded = self.labels.decode(label_values, self.path, None, first_row=done, column=schema.label)
                dense = np.stack([_floats(batch.column(c)) for c in schema.dense], 1) if schema.dense else None
                categorical = np.zeros((n, len(schema.categorical)), dtype=np.uint64)
                for j, name in enumerate(schema.categorical):
                    text = pc.cast(batch.column(name), pa.string()).fill_null("")
                    categorical[:, j] = hash_values(text.to_numpy(zero_copy_only=False))
                yield RawTable(decoded, dense if dense is not None else np.zeros((n, 0)), categorical)
                done += n
        except pa.ArrowException as err:
            raise DataError(self.path, f"row {done + 1:,} on: unreadable ({type(err).__name__}: {err})") from None
        if done == 0:
            raise DataError(self.path, "no data rows")


def _floats(column: object) -> np.ndarray:
    import pyarrow as pa

    return column.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)


def _listed(columns: tuple[str, ...]) -> str:
    shown = ", ".join(columns[:12])
    return shown + (f", ... ({len(columns)} columns)" if len(columns) > 12 else "")
