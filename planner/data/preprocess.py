"""Raw arrays -> model inputs.

- dense: log(1 + max(x, 0)); a missing value becomes -1.0, a value no present one can
  take, so each field's learned affine map gives "missing" its own embedding;
- categorical, vocabulary mode: per column, values seen at least ``min_count`` times in
  the training split get ids 2.. (most frequent first, at most ``max_vocab`` ids in all);
  0 = missing, 1 = out of vocabulary (rare or unseen);
- categorical, hashing mode (``hash_buckets``): 0 = missing, 1 + hash % (buckets - 1).
"""

from __future__ import annotations

import numpy as np
from unimixer_plan.data.reader import MISSING_HASH

MISSING_DENSE = -1.0
MISSING_ID = 0
OOV_ID = 1


def encode_dense(raw: np.ndarray) -> np.ndarray:
    """(rows, num_dense) float with NaN -> float32."""
    present = ~np.isnan(raw)
    out = np.full(raw.shape, MISSING_DENSE, dtype=np.float32)
    out[present] = np.log1p(np.maximum(raw[present], 0.0))
    return out


def fit_vocabulary(train_hashes: np.ndarray, min_count: int, max_vocab: int) -> np.ndarray:
    """Sorted hashes of the kept values of one column (fit on the training split only)."""
    values, counts = np.unique(train_hashes[train_hashes != MISSING_HASH], return_counts=True)
    keep = counts >= min_count
    values, counts = values[keep], counts[keep]
    if len(values) > max_vocab - 2:
        # Most frequent first; ties broken by hash value so the result is deterministic.
        order = np.lexsort((values, -counts))[: max_vocab - 2]
        values = values[order]
    return np.sort(values)


def apply_vocabulary(hashes: np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    """One column of hashes -> int64 ids (0 missing, 1 OOV, 2.. in vocabulary)."""
    ids = np.full(hashes.shape, OOV_ID, dtype=np.int64)
    if len(vocabulary):
        position = np.searchsorted(vocabulary, hashes).clip(max=len(vocabulary) - 1)
        found = vocabulary[position] == hashes
        ids[found] = position[found] + 2
    ids[hashes == MISSING_HASH] = MISSING_ID
    return ids


def hash_ids(hashes: np.ndarray, buckets: int) -> np.ndarray:
    ids = (hashes % np.uint64(buckets - 1)).astype(np.int64) + 1
    ids[hashes == MISSING_HASH] = MISSING_ID
    return ids
