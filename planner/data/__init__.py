"""Data for training candidates: real CTR files (Criteo or a user schema) and a synthetic Criteo default."""

from __future__ import annotations

from planner.data.dataset import CTRData, DataSpec, EncodedSplit, load_data
from planner.data.errors import DataError
from planner.data.schema import CRITEO_SCHEMA, TableSchema, load_schema

__all__ = [
    "CRITEO_SCHEMA",
    "CTRData",
    "DataError",
    "DataSpec",
    "EncodedSplit",
    "TableSchema",
    "load_data",
    "load_schema",
]
