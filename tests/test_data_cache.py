"""The encoded-data cache: a second load maps the arrays without parsing, any change of the file or
an option is a new entry, and the streamed build (small chunks, many merges) equals one in memory."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from unimixer_plan.data import DataSpec, load_data, preprocess
from unimixer_plan.data import build as build_module
from unimixer_plan.data.cache import CACHE_ENV
from unimixer_plan.data.preprocess import ValueCounts
from unimixer_plan.data.reader import DelimitedReader

from tests.conftest import SHARED_CRITEO

TRAIN_TSV = SHARED_CRITEO / "raw_tsv" / "train.tsv"
pytestmark = pytest.mark.skipif(not TRAIN_TSV.exists(), reason="real Criteo samples not found")


def same(a, b) -> bool:
    return a.cardinalities == b.cardinalities and all(
        torch.equal(getattr(getattr(a, s), n), getattr(getattr(b, s), n))
        for s in ("train", "val", "test")
        for n in ("labels", "dense", "sparse")
    )


def mapped_from(address: int) -> str | None:
    """The file mapped at ``address`` in this process (Linux /proc/self/maps)."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in parts[0].split("-"))
        if start <= address < end:
            return parts[5].strip() if len(parts) == 6 else None
    return None


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(TRAIN_TSV.read_bytes())
    return path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_a_second_load_maps_the_cache_without_parsing(data_file, tmp_path, monkeypatch):
    spec = DataSpec(path=str(data_file), cache_dir=str(tmp_path / "cache"))
    first = load_data(spec)
    assert first.cache_path is not None and first.cache_path.startswith(str(tmp_path / "cache"))

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed the file again")

    monkeypatch.setattr(DelimitedReader, "chunks", no_parsing)
    second = load_data(spec)
    assert second.cache_path == first.cache_path and same(first, second)
    # The tensors are views of the entry's memory maps (zero-copy), and writable copy-on-write.
    for tensor, name in ((second.train.sparse, "main.sparse.i64"), (second.test.dense, "main.dense.f32")):
        assert mapped_from(tensor.data_ptr()) == f"{second.cache_path}/{name}"
    second.train.dense[0, 0] = 123.0
    assert load_data(spec).train.dense[0, 0] != 123.0  # the entry on disk is unchanged


def test_the_key_follows_the_file_and_the_options(data_file, tmp_path):
    cache = str(tmp_path / "cache")
    base = load_data(DataSpec(path=str(data_file), cache_dir=cache)).cache_path
    assert load_data(DataSpec(path=str(data_file), cache_dir=cache, min_count=3)).cache_path != base
    assert load_data(DataSpec(path=str(data_file), cache_dir=cache, test_fraction=0.2)).cache_path != base
    assert load_data(DataSpec(path=str(data_file), cache_dir=cache, seed=5)).cache_path == base  # seed: synthetic only
    stat = data_file.stat()
    os.utime(data_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # "edited": a new mtime
    assert load_data(DataSpec(path=str(data_file), cache_dir=cache)).cache_path != base
    assert len([p for p in (tmp_path / "cache").iterdir()]) == 4  # no half-built folder left behind


def test_no_cache_writes_nothing_and_the_environment_names_the_folder(data_file, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env-cache"))
    in_memory = load_data(DataSpec(path=str(data_file), cache=False))
    assert in_memory.cache_path is None and not (tmp_path / "env-cache").exists()
    cached = load_data(DataSpec(path=str(data_file)))
    assert cached.cache_path.startswith(str(tmp_path / "env-cache")) and same(in_memory, cached)


def test_streamed_build_in_small_chunks_equals_one_pass_in_memory(data_file, tmp_path, monkeypatch):
    whole = load_data(DataSpec(path=str(data_file), cache=False, min_count=2, max_vocab=300))
    monkeypatch.setattr(build_module, "READ_CHUNK_ROWS", 500)
    monkeypatch.setattr(build_module, "PASS_CHUNK_ROWS", 333)
    monkeypatch.setattr(preprocess, "_MERGE_AT", 50)
    streamed = load_data(DataSpec(path=str(data_file), cache_dir=str(tmp_path / "c"), min_count=2, max_vocab=300))
    assert streamed.cache_path is not None and same(whole, streamed)
    assert max(whole.cardinalities) == 300  # max_vocab truncated a column: ties at the cut are broken alike


def test_value_counts_merge_chunks_exactly():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 50, 10_000).astype(np.uint64) * np.uint64(7919)  # 0 is "missing"
    counts = ValueCounts()
    for start in range(0, len(hashes), 777):
        counts.add(hashes[start : start + 777], start)
        counts._merge()
    values, first, n = np.unique(hashes[hashes != 0], return_index=True, return_counts=True)
    counts._merge()
    np.testing.assert_array_equal(counts.values, values)
    np.testing.assert_array_equal(counts.counts, n)
    present = np.flatnonzero(hashes != 0)
    np.testing.assert_array_equal(counts.first, present[first])


def test_an_unusable_entry_is_rebuilt_in_place(data_file, tmp_path):
    spec = DataSpec(path=str(data_file), cache_dir=str(tmp_path / "cache"))
    first = load_data(spec)
    meta_file = Path(first.cache_path) / "meta.json"
    meta = json.loads(meta_file.read_text())
    del meta["split"]  # as an entry of an older layout would lack it
    meta_file.write_text(json.dumps(meta))
    again = load_data(spec)
    assert again.cache_path == first.cache_path and same(first, again)
    assert "split" in json.loads(meta_file.read_text())
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [Path(first.cache_path).name]
