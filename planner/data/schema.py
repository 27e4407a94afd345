"""Which columns of a CTR table are the label, dense features and categorical features.

A user's own table is described by a small YAML file (``--schema FILE``)::

    separator: ","            # or "\\t"; omit to detect tab/comma from the first line
    header: true              # the first line names the columns
    columns: [...]            # all columns in file order; required when header is false
    label: clicked
    dense: [age, price]
    categorical: [user_id, item_id, category]
    drop: [timestamp]         # columns present in the file but not used
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from unimixer_plan.data.errors import DataError


@dataclass(frozen=True)
class TableSchema:
    label: str
    dense: tuple[str, ...]
    categorical: tuple[str, ...]
    columns: tuple[str, ...] | None = None  # file order; None = read from the header
    separator: str | None = None  # None = detect tab or comma
    header: bool | None = None  # None = detect (first field of line 1 not a number)
    drop: tuple[str, ...] = ()
    name: str = "custom"

    @property
    def used_columns(self) -> tuple[str, ...]:
        return (self.label, *self.dense, *self.categorical)


CRITEO_SCHEMA = TableSchema(
    label="label",
    dense=tuple(f"I{i}" for i in range(1, 14)),
    categorical=tuple(f"C{i}" for i in range(1, 27)),
    columns=("label", *(f"I{i}" for i in range(1, 14)), *(f"C{i}" for i in range(1, 27))),
    name="criteo",
)

_SCHEMA_KEYS = {"separator", "header", "columns", "label", "dense", "categorical", "drop", "name"}


def load_schema(path: str | Path) -> TableSchema:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DataError(path, "schema file does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise DataError(path, f"schema file is not readable YAML ({type(err).__name__})") from None
    if not isinstance(data, dict):
        raise DataError(path, "schema must be a mapping with keys label, dense, categorical")
    unknown = sorted(set(data) - _SCHEMA_KEYS)
    if unknown:
        raise DataError(path, f"unknown schema key {unknown[0]!r}; allowed: {', '.join(sorted(_SCHEMA_KEYS))}")
    if not isinstance(data.get("label"), str):
        raise DataError(path, "schema key 'label' must name one column")

    def names(key: str) -> tuple[str, ...]:
        value: Any = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DataError(path, f"schema key {key!r} must be a list of column names")
        return tuple(value)

    schema = TableSchema(
        label=data["label"],
        dense=names("dense"),
        categorical=names("categorical"),
        columns=names("columns") or None,
        separator=data.get("separator"),
        header=data.get("header"),
        drop=names("drop"),
        name=str(data.get("name", path.stem)),
    )
    if not schema.dense and not schema.categorical:
        raise DataError(path, "schema names no dense and no categorical column")
    used = schema.used_columns
    duplicated = sorted({c for c in used if used.count(c) > 1})
    if duplicated:
        raise DataError(path, f"column {duplicated[0]!r} is used twice in the schema")
    if schema.header is False and schema.columns is None:
        raise DataError(path, "schema with header: false must list 'columns' in file order")
    if schema.columns is not None:
        missing = [c for c in used if c not in schema.columns]
        if missing:
            raise DataError(path, f"column {missing[0]!r} is not in the schema's 'columns'")
    if schema.separator is not None and (not isinstance(schema.separator, str) or len(schema.separator) != 1):
        raise DataError(path, f"separator {schema.separator!r} must be one character")
    return schema
