"""Raw arrays -> model inputs.

- dense: log(1 + max(x, 0)); a missing value becomes -1.0, a value no present one can
  take, so each field's learned affine map gives "missing" its own embedding;
- categorical, vocabulary mode: per column, values seen at least ``min_count`` times in
  the training split get ids 2.. in order of count, most frequent first, ties by first
  appearance (at most ``max_vocab`` ids in all); 0 = missing, 1 = out of vocabulary (rare or
  unseen). The order depends on the rows only, never on the hash values, so the same rows in any
  file format get the same ids (a CSV's "68fd1e64" and a libFM index hash differently);
- categorical, hashing mode (``hash_buckets``): 0 = missing, 1 + hash % (buckets - 1).

Counting streams: ``ValueCounts`` takes the training rows a chunk at a time, so a 45M-row
file's vocabulary is fit without its raw hashes in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from unimixer_plan.data.raw import MISSING_HASH

MISSING_DENSE = -1.0
MISSING_ID = 0
OOV_ID = 1
_MERGE_AT = 1 << 21  # pending distinct values before a merge; merges cost O(distinct) each


def encode_dense(raw: np.ndarray) -> np.ndarray:
    """(rows, num_dense) float with NaN -> float32."""
    present = ~np.isnan(raw)
    out = np.full(raw.shape, MISSING_DENSE, dtype=np.float32)
    out[present] = np.log1p(np.maximum(raw[present], 0.0))
    return out


@dataclass(frozen=True)
class Vocabulary:
    """The kept values of one column: their hashes sorted (for lookup) and the id of each."""

    hashes: np.ndarray  # uint64, ascending
    ids: np.ndarray  # int64, ids[i] is the id of hashes[i]

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def cardinality(self) -> int:
        return len(self) + 2  # + missing + OOV


class ValueCounts:
    """Count, and first row, of every non-missing value of one column, merged chunk by chunk."""

    def __init__(self) -> None:
        self.values = np.zeros(0, dtype=np.uint64)
        self.counts = np.zeros(0, dtype=np.int64)
        self.first = np.zeros(0, dtype=np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_size = 0

    def add(self, hashes: np.ndarray, first_row: int) -> None:
        """One chunk of the column; ``first_row`` is its first row's position in the training split."""
        rows = np.flatnonzero(hashes != MISSING_HASH)
        values, index, counts = np.unique(hashes[rows], return_index=True, return_counts=True)
        self._pending.append((values, counts.astype(np.int64), rows[index].astype(np.int64) + first_row))
        self._pending_size += len(values)
        if self._pending_size > max(len(self.values), _MERGE_AT):
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        parts = [(self.values, self.counts, self.first), *self._pending]
        values, counts, first = (np.concatenate([p[i] for p in parts]) for i in range(3))
        self._pending, self._pending_size = [], 0
        if not len(values):
            return
        order = np.argsort(values, kind="stable")
        values, counts, first = values[order], counts[order], first[order]
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
        self.values = values[starts]
        self.counts = np.add.reduceat(counts, starts)
        self.first = np.minimum.reduceat(first, starts)

    def vocabulary(self, min_count: int, max_vocab: int) -> Vocabulary:
        self._merge()
        keep = self.counts >= min_count
        values, counts, first = self.values[keep], self.counts[keep], self.first[keep]
        chosen = np.lexsort((first, -counts))[: max_vocab - 2]  # most frequent first, then first seen
        values = values[chosen]
        by_hash = np.argsort(values)
        return Vocabulary(hashes=values[by_hash], ids=(np.arange(len(values), dtype=np.int64) + 2)[by_hash])


def fit_vocabulary(train_hashes: np.ndarray, min_count: int, max_vocab: int) -> Vocabulary:
    """One column's vocabulary from its training hashes in memory."""
    counts = ValueCounts()
    counts.add(train_hashes, 0)
    return counts.vocabulary(min_count, max_vocab)


def apply_vocabulary(hashes: np.ndarray, vocabulary: Vocabulary) -> np.ndarray:
    """One column of hashes -> int64 ids (0 missing, 1 OOV, 2.. in vocabulary)."""
    ids = np.full(hashes.shape, OOV_ID, dtype=np.int64)
    if len(vocabulary):
        position = np.searchsorted(vocabulary.hashes, hashes).clip(max=len(vocabulary) - 1)
        found = vocabulary.hashes[position] == hashes
        ids[found] = vocabulary.ids[position[found]]
    ids[hashes == MISSING_HASH] = MISSING_ID
    return ids


def hash_ids(hashes: np.ndarray, buckets: int) -> np.ndarray:
    ids = (hashes % np.uint64(buckets - 1)).astype(np.int64) + 1
    ids[hashes == MISSING_HASH] = MISSING_ID
    return ids
