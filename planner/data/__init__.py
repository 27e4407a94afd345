"""Data for training candidates: real CTR files (Criteo or a user schema) and a synthetic Criteo default."""

from __future__ import annotations

from unimixer_plan.data.dataset import CTRData, DataSpec, EncodedSplit, load_data
from unimixer_plan.data.errors import DataError
from unimixer_plan.data.schema import CRITEO_SCHEMA, TableSchema, load_schema

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
