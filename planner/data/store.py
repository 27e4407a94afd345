"""Where the encoded rows of one file (a *part*) are built: in memory, or in files on disk.

A part is written in one pass as the reader streams (labels and dense values final, categorical
values still as 64-bit hashes), then its hashes are replaced by vocabulary ids in place: uint64
and int64 are the same size, so the disk part never needs a second copy. The file part reads and
writes with plain file I/O, a chunk at a time, so a 45M-row build holds one chunk, not the pages
of a 12 GB mapping; only the finished arrays are memory-mapped (copy-on-write: a tensor over
them is writable, and the cache files never change).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]  # labels (n,) f32, dense (n, d) f32, sparse (n, c) i64
Encoder = Callable[[np.ndarray], np.ndarray]  # (rows, c) uint64 hashes -> (rows, c) int64 ids


class MemoryPart:
    def __init__(self, num_dense: int, num_categorical: int) -> None:
        self.widths = (num_dense, num_categorical)
        self._chunks: list[Arrays] = []
        self.rows = 0

    def append(self, labels: np.ndarray, dense: np.ndarray, hashes: np.ndarray) -> None:
        self._chunks.append((labels, dense, hashes))
        self.rows += len(labels)

    def finish(self) -> None:
        chunks, self._chunks = self._chunks, []
        d, c = self.widths
        self._labels = np.concatenate([x[0] for x in chunks]) if chunks else np.zeros(0, np.float32)
        self._dense = np.concatenate([x[1] for x in chunks]) if chunks else np.zeros((0, d), np.float32)
        self._sparse = np.concatenate([x[2] for x in chunks]) if chunks else np.zeros((0, c), np.uint64)

    def hashes(self, start: int, stop: int) -> np.ndarray:
        return self._sparse[start:stop]

    def encode(self, encoder: Encoder, chunk_rows: int) -> None:
        ids = self._sparse.view(np.int64)
        for start in range(0, self.rows, chunk_rows):
            ids[start : start + chunk_rows] = encoder(self._sparse[start : start + chunk_rows])

    def arrays(self) -> Arrays:
        return self._labels, self._dense, self._sparse.view(np.int64)


class FilePart:
    """Three raw native-endian files in ``folder``: NAME.labels.f32, NAME.dense.f32, NAME.sparse.i64."""

    def __init__(self, folder: Path, name: str, num_dense: int, num_categorical: int) -> None:
        self.widths = (num_dense, num_categorical)
        self.paths = {kind: folder / f"{name}.{kind}" for kind in ("labels.f32", "dense.f32", "sparse.i64")}
        self._handles = {kind: path.open("wb") for kind, path in self.paths.items()}
        self.rows = 0

    def append(self, labels: np.ndarray, dense: np.ndarray, hashes: np.ndarray) -> None:
        for kind, values in zip(self._handles, (labels, dense, hashes), strict=True):
            np.ascontiguousarray(values).tofile(self._handles[kind])
        self.rows += len(labels)

    def finish(self) -> None:
        for handle in self._handles.values():
            handle.close()

    def hashes(self, start: int, stop: int) -> np.ndarray:
        c = self.widths[1]
        count = (min(stop, self.rows) - start) * c
        return np.fromfile(self.paths["sparse.i64"], dtype=np.uint64, count=count, offset=start * c * 8).reshape(-1, c)

    def encode(self, encoder: Encoder, chunk_rows: int) -> None:
        c = self.widths[1]
        with self.paths["sparse.i64"].open("r+b") as handle:
            for start in range(0, self.rows, chunk_rows):
                ids = encoder(self.hashes(start, start + chunk_rows))
                handle.seek(start * c * 8)
                ids.astype(np.int64, copy=False).tofile(handle)

    def arrays(self) -> Arrays:
        return open_part(self.paths, self.rows, self.widths)


def open_part(paths: dict[str, Path], rows: int, widths: tuple[int, int]) -> Arrays:
    """Memory-map a finished part (copy-on-write, see the module docstring)."""
    d, c = widths

    def mapped(kind: str, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
        if not rows or (len(shape) > 1 and not shape[1]):
            return np.zeros(shape, dtype=dtype)  # an empty file cannot be mapped
        return np.memmap(paths[kind], dtype=dtype, mode="c", shape=shape)

    return (
        mapped("labels.f32", np.float32, (rows,)),
        mapped("dense.f32", np.float32, (rows, d)),
        mapped("sparse.i64", np.int64, (rows, c)),
    )
