"""Real files -> encoded arrays, streamed: the data layer's pipeline behind ``load_data``.

1. open the training file (and the ``--valid`` / ``--test`` files, which must match it);
2. if the cache holds this key, map its arrays and stop: a second load parses nothing;
3. stream every file chunk by chunk into a part (store.py): labels, encoded dense values and raw
   categorical hashes, so the raw text and string arrays of a chunk are dropped as it is written;
4. split the rows (splits.py), count the training split's values from the stored hashes and fit
   the vocabularies (or use hashing), then replace the hashes by ids in place.

The text is parsed once; the vocabulary pass and the encoding pass read the stored hashes, which
is what lets a file be split by its row count (known only at its end) without parsing it twice.
Peak memory is a chunk plus the value counts of the training split (a few hundred MB for the
full Kaggle Criteo), whatever the file's size.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from unimixer_plan.data.cache import CacheEntry, cache_key, cache_root, file_identity
from unimixer_plan.data.errors import DataError
from unimixer_plan.data.formats import Source, check_matches, detect_format, open_source
from unimixer_plan.data.labels import LabelDecoder
from unimixer_plan.data.preprocess import ValueCounts, apply_vocabulary, encode_dense, hash_ids
from unimixer_plan.data.schema import load_schema
from unimixer_plan.data.splits import SplitPlan, plan_splits
from unimixer_plan.data.store import Arrays, FilePart, MemoryPart, open_part

READ_CHUNK_ROWS = 65_536
PASS_CHUNK_ROWS = 262_144  # binary passes over stored hashes: 54 MB a chunk for Criteo's 26 columns
META_KEYS = ("num_dense", "num_categorical", "cardinalities", "parts", "splits", "schema_name", "format", "split")


class RealSpec(Protocol):
    """The DataSpec fields this module reads (dataset.DataSpec)."""

    path: str | None
    schema_path: str | None
    format: str | None
    positive_label: str | None
    valid_path: str | None
    test_path: str | None
    val_fraction: float
    test_fraction: float
    min_count: int
    max_vocab: int
    hash_buckets: int | None
    max_rows: int | None
    cache: bool
    cache_dir: str | None


@dataclass(frozen=True)
class Encoded:
    splits: dict[str, Arrays]  # train, val, test
    num_dense: int
    cardinalities: tuple[int, ...]
    description: str
    cache_path: str | None  # the entry the arrays are mapped from; None: in memory


def encode_files(spec: RealSpec) -> Encoded:
    labels = LabelDecoder(spec.positive_label)
    schema = load_schema(spec.schema_path) if spec.schema_path else None
    paths = {"main": str(spec.path)}
    paths.update({part: p for part, p in (("valid", spec.valid_path), ("test", spec.test_path)) if p})
    fmt, separator = detect_format(Path(paths["main"]), spec.format)
    main = open_source(Path(paths["main"]), fmt, schema, labels, separator, spec.schema_path)
    sources: dict[str, Source] = {"main": main}
    for part, split in (("valid", "validation"), ("test", "test")):
        if part in paths:
            path = Path(paths[part])
            other, other_separator = detect_format(path, spec.format)
            if other != fmt:
                raise DataError(
                    path, f"{split} file is {other}, the training file {main.path} is {fmt}: use one format"
                )
            layout = getattr(main, "layout", None)
            sources[part] = open_source(path, fmt, main.schema, labels, other_separator, spec.schema_path, layout)
            check_matches(split, sources[part], main)
    payload = _key_payload(spec, sources, fmt, separator)
    entry = CacheEntry(cache_root(spec.cache_dir), cache_key(payload)) if spec.cache else None
    if entry is not None and (meta := entry.meta(META_KEYS)) is not None:
        return _from_entry(entry.path, meta, paths["main"])
    folder = entry.start() if entry is not None else None
    try:
        meta, arrays = _build(spec, sources, paths, folder)
        if entry is None or folder is None:
            return _encoded(meta, arrays, paths["main"], None)
        entry.publish(folder, meta)
    except OSError as err:
        raise DataError(
            folder or paths["main"],
            f"building the encoded data failed ({err}); free space, or --cache-dir / --no-cache",
        ) from None
    finally:
        if folder is not None and folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
    return _from_entry(entry.path, entry.meta(META_KEYS) or meta, paths["main"])


def _key_payload(spec: RealSpec, sources: dict[str, Source], fmt: str, separator: str | None) -> dict[str, Any]:
    return {
        "files": {part: file_identity(source.path) for part, source in sources.items()},
        "format": fmt,
        "separator": separator,
        "schema": asdict(sources["main"].schema),
        "positive_label": spec.positive_label,
        "encoding": {"min_count": spec.min_count, "max_vocab": spec.max_vocab, "hash_buckets": spec.hash_buckets},
        "split": {
            "max_rows": spec.max_rows,
            "val_fraction": None if "valid" in sources else spec.val_fraction,
            "test_fraction": None if "test" in sources else spec.test_fraction,
        },
    }


def _build(
    spec: RealSpec, sources: dict[str, Source], paths: dict[str, str], folder: Path | None
) -> tuple[dict[str, Any], dict[str, Arrays]]:
    schema = sources["main"].schema
    widths = (len(schema.dense), len(schema.categorical))
    parts: dict[str, MemoryPart | FilePart] = {}
    for name, source in sources.items():
        part = FilePart(folder, name, *widths) if folder is not None else MemoryPart(*widths)
        try:
            for chunk in source.chunks(READ_CHUNK_ROWS, spec.max_rows if name == "main" else None):
                part.append(chunk.labels, encode_dense(chunk.dense), chunk.categorical)
        finally:
            part.finish()
        parts[name] = part
    plan = plan_splits({n: p.rows for n, p in parts.items()}, paths, spec.val_fraction, spec.test_fraction)
    if spec.hash_buckets:
        buckets = spec.hash_buckets
        cardinalities = (buckets,) * widths[1]

        def encoder(hashes: np.ndarray) -> np.ndarray:
            ids = np.empty(hashes.shape, dtype=np.int64)
            for j in range(widths[1]):
                ids[:, j] = hash_ids(hashes[:, j], buckets)
            return ids
    else:
        vocabularies = _fit_vocabularies(parts["main"], plan, widths[1], spec.min_count, spec.max_vocab)
        cardinalities = tuple(v.cardinality for v in vocabularies)

        def encoder(hashes: np.ndarray) -> np.ndarray:
            ids = np.empty(hashes.shape, dtype=np.int64)
            for j, vocabulary in enumerate(vocabularies):
                ids[:, j] = apply_vocabulary(hashes[:, j], vocabulary)
            return ids

    for part in parts.values():
        part.encode(encoder, PASS_CHUNK_ROWS)
    meta = {
        "num_dense": widths[0],
        "num_categorical": widths[1],
        "cardinalities": list(cardinalities),
        "parts": {name: part.rows for name, part in parts.items()},
        "splits": {split: list(r) for split, r in plan.ranges.items()},
        "schema_name": schema.name,
        "format": sources["main"].format,
        "split": plan.how,
    }
    return meta, {name: part.arrays() for name, part in parts.items()}


def _fit_vocabularies(main: MemoryPart | FilePart, plan: SplitPlan, columns: int, min_count: int, max_vocab: int):
    _, start, stop = plan.ranges["train"]
    counts = [ValueCounts() for _ in range(columns)]
    for lo in range(start, stop, PASS_CHUNK_ROWS):
        hashes = main.hashes(lo, min(lo + PASS_CHUNK_ROWS, stop))
        for j, counter in enumerate(counts):
            counter.add(hashes[:, j], lo - start)
    return [counter.vocabulary(min_count, max_vocab) for counter in counts]


def _encoded(meta: dict[str, Any], parts: dict[str, Arrays], path: str, cache_path: str | None) -> Encoded:
    splits = {}
    for split, (part, start, stop) in meta["splits"].items():
        splits[split] = tuple(array[start:stop] for array in parts[part])
    return Encoded(
        splits=splits,  # type: ignore[arg-type]
        num_dense=meta["num_dense"],
        cardinalities=tuple(meta["cardinalities"]),
        description=f"{meta['schema_name']} (real: {path}, {meta['format']}; {meta['split']})",
        cache_path=cache_path,
    )


def _from_entry(folder: Path, meta: dict[str, Any], path: str) -> Encoded:
    widths = (meta["num_dense"], meta["num_categorical"])
    parts = {}
    for name, rows in meta["parts"].items():
        paths = {kind: folder / f"{name}.{kind}" for kind in ("labels.f32", "dense.f32", "sparse.i64")}
        parts[name] = open_part(paths, rows, widths)
    return _encoded(meta, parts, path, str(folder))
