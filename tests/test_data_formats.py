"""The same rows in any format give the same encoded data: the shared 10k Criteo CSV rows written
into tmp_path as libFM (-1/1 labels), libFFM and Parquet encode to identical arrays."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
import torch
from unimixer_plan.data import CRITEO_SCHEMA, DataSpec, load_data
from unimixer_plan.data.formats import detect_format

from tests.conftest import SHARED_CRITEO

CRITEO_10K = SHARED_CRITEO / "criteo_sampled_data_10k.csv"
needs_criteo = pytest.mark.skipif(not CRITEO_10K.exists(), reason="real Criteo samples not found")

CRITEO_SCHEMA_YAML = (
    "name: criteo\nlabel: label\n"
    f"columns: [{', '.join(CRITEO_SCHEMA.columns)}]\n"
    f"dense: [{', '.join(CRITEO_SCHEMA.dense)}]\n"
    f"categorical: [{', '.join(CRITEO_SCHEMA.categorical)}]\n"
)


def criteo_frame(rows: int | None = None) -> pd.DataFrame:
    return pd.read_csv(CRITEO_10K, dtype=str, keep_default_na=False, nrows=rows)


def libfm_lines(frame: pd.DataFrame) -> list[str]:
    """label -1/1; field k is the k-th pair: a dense field's value (nan = missing), a categorical
    field's 8-hex value as its integer index with value 1 (missing: value 0)."""
    out = []
    for row in frame.itertuples(index=False):
        label, *values = row
        pairs = [f"{k + 1}:{values[k] or 'nan'}" for k in range(13)]
        pairs += [f"{int(v, 16)}:1" if v else "0:0" for v in values[13:]]
        out.append(" ".join(["1" if label == "1" else "-1", *pairs]) + "\n")
    return out


def libffm_lines(frame: pd.DataFrame) -> list[str]:
    """label 0/1; field numbers 0..38 in schema order; a missing value's pair is left out."""
    out = []
    for row in frame.itertuples(index=False):
        label, *values = row
        pairs = [f"{k}:{k}:{values[k]}" for k in range(13) if values[k]]
        pairs += [f"{k}:{int(values[k], 16)}:1" for k in range(13, 39) if values[k]]
        out.append(" ".join([label, *pairs]) + "\n")
    return out


def parquet_file(frame: pd.DataFrame, path) -> None:
    table = pd.DataFrame({"label": frame["label"].astype(int)})
    for column in CRITEO_SCHEMA.dense:
        table[column] = pd.to_numeric(frame[column].replace("", None))
    for column in CRITEO_SCHEMA.categorical:
        table[column] = frame[column].replace("", None)
    table.to_parquet(path, row_group_size=3_000)  # several row groups: the reader streams them


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("formats")
    frame = criteo_frame()
    (folder / "criteo.yaml").write_text(CRITEO_SCHEMA_YAML)
    (folder / "rows.libfm").write_text("".join(libfm_lines(frame)))
    (folder / "rows.libffm").write_text("".join(libffm_lines(frame)))
    parquet_file(frame, folder / "rows.parquet")
    return folder


def assert_same_encoding(a, b) -> None:
    assert (a.num_dense, a.cardinalities) == (b.num_dense, b.cardinalities)
    for split in ("train", "val", "test"):
        x, y = getattr(a, split), getattr(b, split)
        for name in ("labels", "dense", "sparse"):
            assert torch.equal(getattr(x, name), getattr(y, name)), (split, name)


@needs_criteo
@pytest.mark.parametrize("name", ["rows.libfm", "rows.libffm", "rows.parquet"])
def test_criteo_rows_encode_identically_in_every_format(written, name):
    csv = load_data(DataSpec(path=str(CRITEO_10K), cache=False))
    schema = str(written / "criteo.yaml") if "libf" in name else None
    other = load_data(DataSpec(path=str(written / name), schema_path=schema, cache=False))
    assert_same_encoding(csv, other)
    assert len(other.train) == 7_999 and other.cardinalities[0] == csv.cardinalities[0] > 2
    # Hashing mode keys ids on a value's text: a CSV's "68fd1e64" is not the libFM index 1761419876,
    # but Parquet carries the same text, so only Parquet may (and must) match there.
    if name.endswith(".parquet"):
        hashed = load_data(DataSpec(path=str(written / name), hash_buckets=1_000, cache=False))
        assert_same_encoding(load_data(DataSpec(path=str(CRITEO_10K), hash_buckets=1_000, cache=False)), hashed)


@needs_criteo
def test_gzip_and_format_override_read_the_same_rows(written, tmp_path):
    packed = tmp_path / "rows.libfm.gz"
    packed.write_bytes(gzip.compress((written / "rows.libfm").read_bytes()))
    renamed = tmp_path / "rows.txt"  # an unknown extension reads as CSV/TSV unless --format says otherwise
    renamed.write_bytes((written / "rows.libfm").read_bytes())
    schema = str(written / "criteo.yaml")
    plain = load_data(DataSpec(path=str(written / "rows.libfm"), schema_path=schema, cache=False))
    assert_same_encoding(plain, load_data(DataSpec(path=str(packed), schema_path=schema, cache=False)))
    forced = DataSpec(path=str(renamed), schema_path=schema, format="libsvm", cache=False)
    assert_same_encoding(plain, load_data(forced))


@needs_criteo
def test_fast_and_exact_libfm_parsers_agree(written):
    from unimixer_plan.data.labels import LabelDecoder
    from unimixer_plan.data.libsvm import _parse_fm, _parse_fm_exact, layout_for
    from unimixer_plan.data.schema import load_schema

    layout = layout_for(written / "rows.libfm", load_schema(written / "criteo.yaml"), ffm=False)
    block = (written / "rows.libfm").read_text().splitlines(keepends=True)[:2_000]
    fast = _parse_fm(written / "rows.libfm", block, 1, layout, LabelDecoder())
    exact = _parse_fm_exact(written / "rows.libfm", block, 1, layout, LabelDecoder())
    np.testing.assert_array_equal(fast.labels, exact.labels)
    np.testing.assert_array_equal(fast.categorical, exact.categorical)
    np.testing.assert_array_equal(np.nan_to_num(fast.dense, nan=-7), np.nan_to_num(exact.dense, nan=-7))
    assert np.isnan(fast.dense).any() and (fast.categorical == 0).any()  # missing values on both paths


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.libfm", "libfm"),
        ("a.libsvm.gz", "libfm"),
        ("a.SVM", "libfm"),
        ("a.ffm", "libffm"),
        ("a.libffm.gz", "libffm"),
        ("a.parquet", "parquet"),
        ("a.csv.gz", "csv"),
        ("a.tsv", "csv"),
        ("train.txt", "csv"),
        ("no_extension", "csv"),
    ],
)
def test_format_by_extension(tmp_path, name, expected):
    assert detect_format(tmp_path / name) == (expected, None)


def test_format_override_fixes_the_separator(tmp_path):
    assert detect_format(tmp_path / "a.libfm", "csv") == ("csv", ",")
    assert detect_format(tmp_path / "a.csv", "tsv") == ("csv", "\t")
    assert detect_format(tmp_path / "a.csv", "libsvm") == ("libfm", None)


def test_one_hot_libfm_needs_no_schema(tmp_path):
    # Frappe's layout: -1/1 labels, one index per field from a global one-hot numbering, value 1.
    rng = np.random.default_rng(0)
    offsets = np.array([0, 1_000, 1_500, 1_510])
    sizes = np.array([1_000, 500, 10, 3])
    lines = []
    for _ in range(500):
        ids = offsets + rng.integers(0, sizes) % np.array([40, 20, 10, 3])
        label = "1" if ids[2] - offsets[2] < 3 else "-1"
        lines.append(" ".join([label, *(f"{i}:1" for i in ids)]) + "\n")
    path = tmp_path / "frappe.train.libfm"
    path.write_text("".join(lines))
    data = load_data(DataSpec(path=str(path), min_count=1, cache=False))
    assert data.num_dense == 0 and len(data.cardinalities) == 4
    assert data.cardinalities[2:] == (10 + 2, 3 + 2)  # every value of the small fields, + missing + OOV
    assert data.description.startswith("libfm (real: ")
    assert (len(data.train), len(data.val), len(data.test)) == (400, 50, 50)
    labels = np.array([line.split()[0] == "1" for line in lines], dtype=np.float32)
    np.testing.assert_array_equal(data.train.labels.numpy(), labels[:400])


def test_vocabulary_ids_follow_count_then_first_appearance(tmp_path):
    # Training rows c b a b c b e: b (3 times) gets id 2, c (2) 3, then a and e (once each) by first row.
    path = tmp_path / "t.csv"
    path.write_text("label,x\n" + "".join(f"{i % 2},{x}\n" for i, x in enumerate("cbabcbe" + "a" + "d")))
    schema = tmp_path / "s.yaml"
    schema.write_text("label: label\ncategorical: [x]\n")
    data = load_data(DataSpec(path=str(path), schema_path=str(schema), min_count=1, cache=False))
    assert data.train.sparse[:, 0].tolist() == [3, 2, 4, 2, 3, 2, 5]
    assert data.val.sparse[:, 0].tolist() == [4] and data.test.sparse[:, 0].tolist() == [1]  # d: out of vocabulary
    assert data.cardinalities == (4 + 2,)


def test_named_positive_label(tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text("clicked,item\n" + "".join(f"{'yes' if i % 3 == 0 else 'no'},i{i % 4}\n" for i in range(30)))
    schema = tmp_path / "s.yaml"
    schema.write_text("label: clicked\ncategorical: [item]\n")
    data = load_data(DataSpec(path=str(path), schema_path=str(schema), positive_label="yes", cache=False))
    every = torch.cat([data.train.labels, data.val.labels, data.test.labels])
    assert every.tolist() == [1.0 if i % 3 == 0 else 0.0 for i in range(30)]


@pytest.mark.slow
@needs_criteo
def test_csv_libfm_and_parquet_train_to_the_same_auc(written):
    from unimixer_plan.training.trainer import TrainSettings, evaluate

    from tests.conftest import small_config

    specs = {
        "csv": DataSpec(path=str(CRITEO_10K), cache=False),
        "libfm": DataSpec(path=str(written / "rows.libfm"), schema_path=str(written / "criteo.yaml"), cache=False),
        "parquet": DataSpec(path=str(written / "rows.parquet"), cache=False),
    }
    auc = {}
    for name, spec in specs.items():
        data = load_data(spec)
        config = small_config("unimixing_lite", **data.schema)
        result = evaluate(config, data, fidelity=len(data.train), settings=TrainSettings(max_epochs=3, patience=3))
        assert result.ok, result.error
        auc[name] = result.val_auc
    assert auc["csv"] > 0.6, auc  # it learned something
    assert abs(auc["libfm"] - auc["csv"]) < 0.005 and abs(auc["parquet"] - auc["csv"]) < 0.005, auc
