"""The real Criteo samples in ../shared/data/criteo load as their README states."""

from __future__ import annotations

import numpy as np
import pytest
from unimixer_plan.data import CRITEO_SCHEMA, DataSpec, load_data
from unimixer_plan.data.reader import read_table

from tests.conftest import SHARED_CRITEO

pytestmark = pytest.mark.skipif(
    not SHARED_CRITEO.is_dir(), reason=f"real Criteo samples not found at {SHARED_CRITEO} (../shared/data/criteo)"
)

SAMPLE_10K = SHARED_CRITEO / "criteo_sampled_data_10k.csv"

# shared/data/README.md: missing rate per column of the 10k sample (3 decimals).
README_MISSING_RATES = {
    "I1": 0.448,
    "I3": 0.204,
    "I4": 0.198,
    "I13": 0.198,
    "I5": 0.049,
    "I6": 0.251,
    "I7": 0.049,
    "I9": 0.049,
    "I11": 0.049,
    "I8": 0.001,
    "I10": 0.448,
    "I12": 0.773,
    "I2": 0.0,
    "C3": 0.036,
    "C4": 0.036,
    "C12": 0.036,
    "C16": 0.036,
    "C21": 0.036,
    "C24": 0.036,
    "C6": 0.133,
    "C19": 0.450,
    "C20": 0.450,
    "C25": 0.450,
    "C26": 0.450,
    "C22": 0.818,
    "C1": 0.0,
    "C23": 0.0,
}


def test_10k_csv_rows_labels_and_missing_rates():
    raw = read_table(SAMPLE_10K, CRITEO_SCHEMA)
    assert len(raw) == 9_999
    assert int(raw.labels.sum()) == 2_181
    for column, rate in README_MISSING_RATES.items():
        if column.startswith("I"):
            missing = np.isnan(raw.dense[:, CRITEO_SCHEMA.dense.index(column)])
        else:
            missing = raw.categorical[:, CRITEO_SCHEMA.categorical.index(column)] == 0
        assert round(missing.mean(), 3) == rate, column
    # I1 and I10 are missing together, as are C19, C20, C25 and C26
    np.testing.assert_array_equal(np.isnan(raw.dense[:, 0]), np.isnan(raw.dense[:, 9]))
    c19 = raw.categorical[:, 18] == 0
    for j in (19, 24, 25):
        np.testing.assert_array_equal(c19, raw.categorical[:, j] == 0)
    # distinct non-missing values per categorical column (README): C1 175, C3 5,519, C22 7
    for column, distinct in (("C1", 175), ("C3", 5_519), ("C22", 7)):
        values = raw.categorical[:, CRITEO_SCHEMA.categorical.index(column)]
        assert len(np.unique(values[values != 0])) == distinct


@pytest.mark.parametrize(("name", "rows", "positives"), [("train", 7_200, 1_549), ("dev", 409, 93), ("test", 391, 86)])
def test_raw_tsv_splits(name, rows, positives):
    raw = read_table(SHARED_CRITEO / "raw_tsv" / f"{name}.tsv", CRITEO_SCHEMA)
    assert len(raw) == rows
    assert int(raw.labels.sum()) == positives
    assert round(raw.labels.mean(), 4) == {"train": 0.2151, "dev": 0.2274, "test": 0.2199}[name]


def test_csv_and_tsv_layouts_give_the_same_values():
    # raw_tsv is lines 1..8000 of Kaggle train.txt split at random with order kept, the 10k CSV is lines 1..9999.
    csv = read_table(SAMPLE_10K, CRITEO_SCHEMA, max_rows=1)
    tsv = read_table(SHARED_CRITEO / "raw_tsv" / "train.tsv", CRITEO_SCHEMA, max_rows=1)
    np.testing.assert_array_equal(csv.labels, tsv.labels)
    np.testing.assert_array_equal(csv.dense, tsv.dense)  # "1.0" in the CSV, "1" in the TSV
    np.testing.assert_array_equal(csv.categorical, tsv.categorical)


def test_gzip_and_small_chunks_read_identically(tmp_path):
    import gzip

    packed = tmp_path / "train.tsv.gz"
    packed.write_bytes(gzip.compress((SHARED_CRITEO / "raw_tsv" / "train.tsv").read_bytes()))
    plain = read_table(SHARED_CRITEO / "raw_tsv" / "train.tsv", CRITEO_SCHEMA)
    zipped = read_table(packed, CRITEO_SCHEMA, chunk_rows=1000)
    np.testing.assert_array_equal(plain.labels, zipped.labels)
    np.testing.assert_array_equal(plain.categorical, zipped.categorical)
    np.testing.assert_array_equal(np.nan_to_num(plain.dense, nan=-7), np.nan_to_num(zipped.dense, nan=-7))


def test_split_is_by_row_order_and_vocabulary_is_fit_on_training_rows_only():
    # The default split is BARS Criteo_x4's 8:1:1, by file order: train, then validation, then test.
    data = load_data(DataSpec(path=str(SAMPLE_10K), min_count=10))
    assert (len(data.train), len(data.val), len(data.test)) == (7_999, 1_000, 1_000)
    assert "9,999 rows split by file order 8:1:1 (train 7,999 / validation 1,000 / test 1,000)" in data.description
    raw = read_table(SAMPLE_10K, CRITEO_SCHEMA)
    np.testing.assert_array_equal(data.val.labels.numpy(), raw.labels[7_999:8_999])
    np.testing.assert_array_equal(data.test.labels.numpy(), raw.labels[8_999:])
    for j, card in enumerate(data.cardinalities):
        train_values, counts = np.unique(raw.categorical[:7_999, j], return_counts=True)
        kept = int(((counts >= 10) & (train_values != 0)).sum())
        assert card == kept + 2  # + missing + OOV
        assert all(int(split.sparse[:, j].max()) < card for split in (data.train, data.val, data.test))
    # dense: log1p(max(x, 0)), missing -> -1
    i1 = raw.dense[:7_999, 0]
    expected = np.where(np.isnan(i1), -1.0, np.log1p(np.maximum(np.nan_to_num(i1), 0)))
    np.testing.assert_allclose(data.train.dense[:, 0].numpy(), expected, rtol=1e-6)


def test_hashing_mode_bounds_ids():
    data = load_data(DataSpec(path=str(SAMPLE_10K), hash_buckets=97))
    assert data.cardinalities == (97,) * 26
    assert int(data.train.sparse.max()) < 97 and int(data.train.sparse.min()) >= 0


def test_fast_and_exact_parsers_agree_on_real_rows():
    from unimixer_plan.data.reader import _parse_block, _parse_block_exact

    lines = (SHARED_CRITEO / "raw_tsv" / "dev.tsv").read_text().splitlines(keepends=True)
    index = {name: i for i, name in enumerate(CRITEO_SCHEMA.columns)}
    args = ("dev.tsv", lines, 1, "\t", 40, index, CRITEO_SCHEMA)
    fast, exact = _parse_block(*args), _parse_block_exact(*args)
    np.testing.assert_array_equal(fast.labels, exact.labels)
    np.testing.assert_array_equal(fast.categorical, exact.categorical)
    np.testing.assert_array_equal(np.isnan(fast.dense), np.isnan(exact.dense))
    np.testing.assert_array_equal(np.nan_to_num(fast.dense), np.nan_to_num(exact.dense))
