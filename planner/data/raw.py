"""What every reader yields: one chunk of rows reduced to numbers.

Categorical values are identified by their text: a value's 64-bit hash is the same whichever
format carried it (``"123"`` in a CSV, index 123 of a libFM pair, the integer 123 in Parquet), and
0 is kept for "missing".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MISSING_HASH = np.uint64(0)


@dataclass(frozen=True)
class RawTable:
    labels: np.ndarray  # (rows,) float32 in {0, 1}
    dense: np.ndarray  # (rows, num_dense) float64, NaN = missing
    categorical: np.ndarray  # (rows, num_categorical) uint64 hashes, 0 = missing

    def __len__(self) -> int:
        return len(self.labels)


def hash_values(values: np.ndarray) -> np.ndarray:
    """Texts -> uint64 hashes; the empty text is a missing value (hash 0)."""
    values = values.astype(object)
    hashed = pd.util.hash_array(values, categorize=True)
    hashed[hashed == MISSING_HASH] = 1  # keep 0 for "missing"; a real collision is ~2^-64
    hashed[values == ""] = MISSING_HASH
    return hashed


def concatenate(chunks: list[RawTable]) -> RawTable:
    return RawTable(
        labels=np.concatenate([c.labels for c in chunks]),
        dense=np.concatenate([c.dense for c in chunks]),
        categorical=np.concatenate([c.categorical for c in chunks]),
    )
